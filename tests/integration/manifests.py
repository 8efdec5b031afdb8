"""Builders for the Kubernetes manifests the integration tests feed to serval-gateway (a
--config-dir folder or the fake API server), and the atomic file write the folder tests use.
Each builder returns one YAML document ending in a newline; docs() joins several with "---"."""
import json
import os
import subprocess

CONTROLLER = "serval.dev/gateway-controller"


def docs(*parts):
    """Join YAML documents (each ending in a newline) into one multi-document stream."""
    return "---\n".join(parts)


def namespace(name="demo"):
    return f"""\
apiVersion: v1
kind: Namespace
metadata: {{name: {name}}}
"""


def gateway_class(name="serval", controller=CONTROLLER):
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: {name}}}
spec: {{controllerName: {controller}}}
"""


def http_listener(port, name="http"):
    """One listener line for gateway(listeners=...)."""
    return f"  - {{name: {name}, port: {port}, protocol: HTTP}}\n"


def https_listener(port, cert, name="https", hostname=None):
    """One HTTPS listener line for gateway(listeners=...): terminates TLS with Secret <cert>;
    <hostname> None = any."""
    host = "" if hostname is None else f', hostname: "{hostname}"'
    return (f"  - {{name: {name}, port: {port}, protocol: HTTPS{host},\n"
            f"     tls: {{certificateRefs: [{{name: {cert}}}]}}}}\n")


# The SNI set of the TLS tests: listener, hostname, Secret, and the tests/tls/gen-certs.sh leaf
# that Secret holds.
SNI_SET = (("a", "a.example.com", "cert-a", "ec_a"),
           ("wild", "*.example.com", "cert-wild", "ec_wild"),
           ("def", None, "cert-def", "ec_def"))


def sni_listeners(port):
    """The listeners of SNI_SET, all on <port> (lines for gateway(listeners=...))."""
    return "".join(https_listener(port, cert, name, host) for name, host, cert, _ in SNI_SET)


def sni_secrets(certs):
    """The Secrets of SNI_SET from the certificates in <certs>."""
    return docs(*(tls_secret(cert, certs, leaf) for _, _, cert, leaf in SNI_SET))


def gateway(port=None, name="gw", ns="demo", addresses=(), listeners=None, class_name="serval",
            spec=""):
    """A Gateway; by default one HTTP listener "http" on <port>. <listeners> replaces it with
    block-list lines (indented two spaces, like http_listener's). <addresses>: IPAddress values.
    <spec>: more spec lines (indented two spaces), e.g. a tls: block."""
    if listeners is None:
        listeners = http_listener(port)
    text = f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {ns}}}
spec:
  gatewayClassName: {class_name}
""" + spec
    if addresses:
        text += "  addresses: [" + ", ".join(
            f'{{type: IPAddress, value: "{a}"}}' for a in addresses) + "]\n"
    return text + "  listeners:\n" + listeners


def http_route(rules, name="app", ns="demo", parent="gw"):
    """An HTTPRoute attached to Gateway <parent>. <rules>: spec.rules as one flow sequence
    ("[{...}]"), or as block lines indented two spaces ("  - matches: ...\n...")."""
    text = f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {ns}}}
spec:
  parentRefs: [{{name: {parent}}}]
"""
    if rules.startswith("["):
        return text + f"  rules: {rules}\n"
    return text + "  rules:\n" + rules


def service(name, ns="demo", target_port=8080):
    """A Service with one port "http" 80 (targetPort <target_port>; None leaves it out)."""
    tp = "" if target_port is None else f", targetPort: {target_port}"
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  ports: [{{name: http, port: 80{tp}}}]
"""


def endpoint_slice(service_name, addr, port, ns="demo", ready=True):
    """EndpointSlice "<service_name>-1": one endpoint <addr> on port "http" <port>;
    ready=None leaves the conditions out."""
    cond = "" if ready is None else f"\n  conditions: {{ready: {'true' if ready else 'false'}}}"
    return f"""\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {service_name}-1
  namespace: {ns}
  labels: {{kubernetes.io/service-name: {service_name}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints:
- addresses: ["{addr}"]{cond}
"""


def backend(name, addr, port, ns="demo", target_port=8080, ready=True):
    """A Service <name> and its EndpointSlice pointing at <addr>:<port>."""
    return docs(service(name, ns, target_port), endpoint_slice(name, addr, port, ns, ready))


def gen_certs(d):
    """Make the test CA and certificates of tests/tls/gen-certs.sh in <d>/certs; returns that
    folder."""
    certs = os.path.join(d, "certs")
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tls",
                          "gen-certs.sh")
    subprocess.run([script, certs], check=True, timeout=60, capture_output=True)
    return certs


def read_text(certs, name):
    """The text of the file <certs>/<name> (a PEM file)."""
    with open(os.path.join(certs, name)) as f:
        return f.read()


def pem_scalar(certs, name):
    """The PEM file <certs>/<name> as a YAML double-quoted scalar (JSON string syntax)."""
    return json.dumps(read_text(certs, name))


def tls_secret(name, certs, leaf, ns="demo", key_leaf=None):
    """A kubernetes.io/tls Secret <name> holding <certs>/<leaf>.crt and the key
    <certs>/<key_leaf or leaf>.key (a different key_leaf makes a mismatched pair)."""
    return f"""\
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: {ns}}}
type: kubernetes.io/tls
stringData:
  tls.crt: {pem_scalar(certs, leaf + ".crt")}
  tls.key: {pem_scalar(certs, (key_leaf or leaf) + ".key")}
"""


def config_map(name, data, ns="demo"):
    """A ConfigMap <name> whose data holds the strings of the dict <data>."""
    lines = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in data.items())
    return f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: {ns}}}
data:
{lines}"""


def write_atomic(d, name, text):
    """Write <text> to <d>/<name> through a hidden temporary file and a rename, so a watcher of
    the folder never reads a half-written manifest."""
    tmp = os.path.join(d, "." + name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(d, name))
