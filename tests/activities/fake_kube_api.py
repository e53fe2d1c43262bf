"""A small fake of the Kubernetes API server, for the Kubernetes deploy target's tests.

No real API server can run on this machine (no kube-apiserver, kind, k3s or KWOK), so
this fake stands in for the API server ONLY: the kubernetes Python client, helm and
everything on brewline's side are the real thing, talking HTTP to it on 127.0.0.1.

What it serves (enough for the target and for `helm upgrade --install`, `history`,
`rollback`, `get values`):
- `/version`, discovery (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`);
- for the kinds the go-coffee chart renders plus Secrets (helm's release storage):
  list (with `labelSelector` and `fieldSelector=metadata.name=`), watch (`watch=true`,
  a stream of ADDED/MODIFIED/DELETED events until `timeoutSeconds`), create, get,
  replace, delete, and PATCH as JSON merge patch or strategic merge patch (lists of
  objects merged by `name`/`containerPort`/`port`, `$patch: delete`, directives ignored);
- the service proxy `/api/v1/namespaces/<ns>/services/<name>[:<port>]/proxy/<path>`,
  answered from the Deployment of that name: `{"status": "ok", "version": <its pods'
  version label>}` once it has an available replica, 503 before.

A Deployment's status is computed from the time since its spec last changed, like a
controller working through a rollout: for `observe_delay` seconds the new generation is
not observed yet, then one new replica becomes available every `replica_delay` seconds;
the old replicas go once all new ones are available. A Deployment whose name is in
`stuck` never gets an available new replica; one in `deadline_exceeded` also gets the
Progressing=False/ProgressDeadlineExceeded condition the controller sets. Every request
is recorded (method, path, content type, body, Authorization) so tests can check what
was sent and in what order.
"""

from __future__ import annotations

import base64
import copy
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class Kind:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS = [
    Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "configmaps", "ConfigMap"),
    Kind("", "v1", "services", "Service"),
    Kind("", "v1", "serviceaccounts", "ServiceAccount"),
    Kind("", "v1", "pods", "Pod"),
    Kind("", "v1", "namespaces", "Namespace", namespaced=False),
    Kind("apps", "v1", "deployments", "Deployment"),
    Kind("networking.k8s.io", "v1", "ingresses", "Ingress"),
    Kind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    Kind("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    Kind("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    authorization: str = ""


@dataclass
class _Stored:
    obj: dict[str, Any]
    changed_at: float  # when the spec last changed (drives a Deployment's rollout)
    before: dict[str, Any] = field(default_factory=dict)  # status when the spec changed


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


_MERGE_KEYS = ("name", "containerPort", "port", "type", "ip")


def _merge_key(items: list[Any]) -> str | None:
    for key in _MERGE_KEYS:
        if items and all(isinstance(i, dict) and key in i for i in items):
            return key
    return None


def _strategic_patch(target: Any, patch: Any) -> Any:
    """An approximation of Kubernetes' strategic merge patch, good for helm's patches."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # $setElementOrder/..., $retainKeys, $deleteFromPrimitiveList/...
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _strategic_list(result[key], value)
        else:
            result[key] = _strategic_patch(result.get(key), value)
    return result


def _strategic_list(current: list[Any], patch: list[Any]) -> list[Any]:
    key = _merge_key([i for i in patch if not (isinstance(i, dict) and "$patch" in i)] or patch)
    if key is None or not all(isinstance(i, dict) and key in i for i in current):
        return copy.deepcopy([i for i in patch if not (isinstance(i, dict) and "$patch" in i)])
    merged = [copy.deepcopy(i) for i in current]
    for item in patch:
        index = next((n for n, c in enumerate(merged) if c.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[index] = _strategic_patch(merged[index], item)
    return merged


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in _split_selector(selector))):
        if " in " in term or " notin " in term:
            negate = " notin " in term
            name, _, values = term.partition(" notin " if negate else " in ")
            options = {v.strip() for v in values.strip().strip("()").split(",")}
            if (labels.get(name.strip()) in options) == negate:
                return False
        elif "!=" in term:
            name, _, value = term.partition("!=")
            if labels.get(name.strip()) == value.strip():
                return False
        elif "=" in term:
            name, _, value = term.partition("==" if "==" in term else "=")
            if labels.get(name.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _split_selector(selector: str) -> list[str]:
    """Split on commas outside parentheses (`a=b,c in (x,y)`)."""
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return terms


class FakeKubeApi:
    """The fake API server (see module doc). `start()` binds 127.0.0.1 on a free port."""

    def __init__(
        self,
        *,
        observe_delay: float = 0.2,
        replica_delay: float = 0.1,
        token: str | None = None,
    ) -> None:
        self.observe_delay = observe_delay
        self.replica_delay = replica_delay
        # Put in the kubeconfig. Not enforced: client-go (helm) sends no bearer token over
        # plain http; each request's Authorization header is recorded instead.
        self.token = token
        self.stuck: set[str] = set()
        # Deployments whose controller reports ProgressDeadlineExceeded once observed
        self.deadline_exceeded: set[str] = set()
        self.requests: list[Request] = []
        self.proxy_answers: dict[tuple[str, str], Callable[[str], tuple[int, bytes]]] = {}
        self._objects: dict[tuple[str, str, str], _Stored] = {}  # (plural, ns, name)
        self._lock = threading.Lock()
        self._resource_version = 100
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeKubeApi:
        fake = self

        class Handler(_Handler):
            api = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def kubeconfig(self) -> dict[str, Any]:
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": user}],
            "contexts": [
                {"name": "fake", "context": {"cluster": "fake", "user": "fake"}},
            ],
            "current-context": "fake",
        }

    # ---- the store -------------------------------------------------------------------------
    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def put(self, plural: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as a create or replace would (for test setup)."""
        with self._lock:
            return self._store(plural, namespace, copy.deepcopy(obj))

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as a client would read it now (status computed), or None."""
        with self._lock:
            stored = self._objects.get((plural, namespace, name))
            return self._view(plural, stored) if stored else None

    def names(self, plural: str, namespace: str) -> list[str]:
        with self._lock:
            return sorted(n for (p, ns, n) in self._objects if p == plural and ns == namespace)

    def _store(self, plural: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        name = meta["name"]
        if plural != "namespaces":
            meta["namespace"] = namespace
        key = (plural, namespace if plural != "namespaces" else "", name)
        old = self._objects.get(key)
        now = time.monotonic()
        if old is None:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            meta["generation"] = 1
            stored = _Stored(obj, now, {})
        else:
            old_meta = old.obj["metadata"]
            meta["uid"] = old_meta["uid"]
            meta["creationTimestamp"] = old_meta["creationTimestamp"]
            spec_changed = obj.get("spec") != old.obj.get("spec")
            meta["generation"] = old_meta.get("generation", 1) + (1 if spec_changed else 0)
            if spec_changed:
                before = self._view(plural, old).get("status", {})
                stored = _Stored(obj, now, before)
            else:
                stored = _Stored(obj, old.changed_at, old.before)
        if plural == "deployments":
            obj.pop("status", None)  # computed on every read
        meta["resourceVersion"] = self._next_version()
        self._objects[key] = stored
        return self._view(plural, stored)

    def _view(self, plural: str, stored: _Stored) -> dict[str, Any]:
        obj = copy.deepcopy(stored.obj)
        if plural == "deployments":
            obj["status"] = self._deployment_status(obj, stored)
        return obj

    def _deployment_status(self, obj: dict[str, Any], stored: _Stored) -> dict[str, Any]:
        """Where a controller would be in this Deployment's rollout by now."""
        generation = obj["metadata"]["generation"]
        wanted = int(obj.get("spec", {}).get("replicas", 1))
        before = stored.before
        old = int(before.get("availableReplicas", 0))
        elapsed = time.monotonic() - stored.changed_at
        if elapsed < self.observe_delay:
            status = dict(before)
            status["observedGeneration"] = generation - 1
            return status
        name = obj["metadata"]["name"]
        steps = (
            int((elapsed - self.observe_delay) / self.replica_delay)
            if self.replica_delay
            else wanted
        )
        new_available = 0 if name in self.stuck else min(wanted, steps)
        updated = wanted if name in self.stuck else min(wanted, steps + 1)
        done = new_available >= wanted
        total = wanted if done else old + updated
        status = {
            "observedGeneration": generation,
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": (new_available if done else old + new_available),
            "availableReplicas": (new_available if done else old + new_available),
        }
        if total - status["availableReplicas"] > 0:
            status["unavailableReplicas"] = total - status["availableReplicas"]
        result: dict[str, Any] = {k: v for k, v in status.items() if v or k == "observedGeneration"}
        if name in self.deadline_exceeded:
            result["conditions"] = [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": f'ReplicaSet "{name}-1" has timed out progressing.',
                }
            ]
        return result

    # ---- request handling ----------------------------------------------------------------
    def kind(self, plural: str) -> Kind | None:
        return next((k for k in KINDS if k.plural == plural), None)

    def discovery(self, path: str) -> dict[str, Any] | None:
        if path == "/version":
            return {
                "major": "1",
                "minor": "31",
                "gitVersion": "v1.31.0-fake",
                "platform": "linux/amd64",
            }
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.removeprefix("http://")}
                ],
            }
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for k in KINDS:
                if k.group:
                    groups.setdefault(k.group, [])
                    if k.version not in groups[k.group]:
                        groups[k.group].append(k.version)
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": g,
                        "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                        "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                    }
                    for g, vs in groups.items()
                ],
            }
        parts = path.strip("/").split("/")
        group_version = None
        if parts[0] == "api" and len(parts) == 2:
            group_version = parts[1]
        elif parts[0] == "apis" and len(parts) == 3:
            group_version = f"{parts[1]}/{parts[2]}"
        if group_version is None:
            return None
        resources = [
            {
                "name": k.plural,
                "singularName": k.kind.lower(),
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
            for k in KINDS
            if k.group_version == group_version
        ]
        if not resources:
            return None
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }

    def _list(self, plural: str, namespace: str | None, query: dict[str, str]) -> list[Any]:
        selector = query.get("labelSelector", "")
        fields = query.get("fieldSelector", "")
        wanted_name = fields.partition("metadata.name=")[2] if fields else ""
        items = []
        for (p, ns, name), stored in sorted(self._objects.items()):
            if p != plural or (namespace is not None and ns != namespace):
                continue
            if wanted_name and name != wanted_name:
                continue
            labels = stored.obj.get("metadata", {}).get("labels") or {}
            if selector and not _selector_matches(selector, labels):
                continue
            items.append(self._view(plural, stored))
        return items

    def handle(self, handler: _Handler, method: str) -> None:
        split = urlsplit(handler.path)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        content_type = handler.headers.get("Content-Type", "")
        if raw.startswith(_PROTOBUF_MAGIC):
            body: Any = _decode_protobuf(raw)
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        with self._lock:
            self.requests.append(
                Request(
                    method,
                    path,
                    query,
                    content_type,
                    body,
                    handler.headers.get("Authorization", ""),
                )
            )
        info = self.discovery(path) if method == "GET" else None
        if info is not None:
            handler.send_json(200, info)
            return
        if path.startswith("/openapi"):
            handler.send_json(404, _status(404, "NotFound", "no OpenAPI document here"))
            return
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            rest = parts[2:]
            group, version = "", parts[1]
        elif parts[0] == "apis" and len(parts) >= 3:
            rest = parts[3:]
            group, version = parts[1], parts[2]
        else:
            handler.send_json(404, _status(404, "NotFound", f"no route for {path}"))
            return
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and self.kind(rest[2]) is not None:
            namespace, rest = rest[1], rest[2:]
        if not rest:
            handler.send_json(404, _status(404, "NotFound", f"no route for {path}"))
            return
        kind = self.kind(rest[0])
        if kind is None or (kind.group, kind.version) != (group, version):
            handler.send_json(404, _status(404, "NotFound", f"the server could not find {path}"))
            return
        if kind.plural == "services" and len(rest) >= 3 and rest[2] == "proxy":
            self._proxy(handler, namespace or "", rest[1], "/" + "/".join(rest[3:]))
            return
        name = rest[1] if len(rest) > 1 else None
        if name is None:
            self._collection(handler, method, kind, namespace, query, body)
        else:
            self._item(handler, method, kind, namespace or "", name, content_type, body)

    def _collection(
        self,
        handler: _Handler,
        method: str,
        kind: Kind,
        namespace: str | None,
        query: dict[str, str],
        body: Any,
    ) -> None:
        if method == "GET" and query.get("watch") in ("true", "1"):
            self._watch(handler, kind, namespace, query)
            return
        if method == "GET":
            with self._lock:
                items = self._list(kind.plural, namespace, query)
                version = str(self._resource_version)
            handler.send_json(
                200,
                {
                    "kind": f"{kind.kind}List",
                    "apiVersion": kind.group_version,
                    "metadata": {"resourceVersion": version},
                    "items": items,
                },
            )
            return
        if method == "POST":
            name = (body or {}).get("metadata", {}).get("name")
            if not name:
                handler.send_json(422, _status(422, "Invalid", "metadata.name is required"))
                return
            with self._lock:
                if (kind.plural, namespace or "", name) in self._objects:
                    handler.send_json(
                        409,
                        _status(409, "AlreadyExists", f'{kind.plural} "{name}" already exists'),
                    )
                    return
                created = self._store(kind.plural, namespace or "", body)
            handler.send_json(201, created)
            return
        handler.send_json(405, _status(405, "MethodNotAllowed", f"{method} on a collection"))

    def _item(
        self,
        handler: _Handler,
        method: str,
        kind: Kind,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
    ) -> None:
        key = (kind.plural, namespace if kind.namespaced else "", name)
        with self._lock:
            stored = self._objects.get(key)
            if stored is None and not (method == "GET" and kind.plural == "namespaces"):
                handler.send_json(
                    404, _status(404, "NotFound", f'{kind.plural} "{name}" not found')
                )
                return
            if method == "GET":
                if stored is None:  # every namespace exists here
                    answer = {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": name},
                        "status": {"phase": "Active"},
                    }
                else:
                    answer = self._view(kind.plural, stored)
                handler.send_json(200, answer)
                return
            assert stored is not None
            if method == "DELETE":
                del self._objects[key]
                self._next_version()
                handler.send_json(200, self._view(kind.plural, stored))
                return
            current = copy.deepcopy(stored.obj)
            if method == "PUT":
                updated = body
            elif method == "PATCH" and content_type.startswith(STRATEGIC_MERGE_PATCH):
                updated = _strategic_patch(current, body)
            elif method == "PATCH" and content_type.startswith(MERGE_PATCH):
                updated = _merge_patch(current, body)
            else:
                handler.send_json(
                    415,
                    _status(415, "UnsupportedMediaType", f"{method} with {content_type!r}"),
                )
                return
            updated.setdefault("metadata", {})["name"] = name
            result = self._store(kind.plural, namespace, updated)
        handler.send_json(200, result)

    def _watch(
        self, handler: _Handler, kind: Kind, namespace: str | None, query: dict[str, str]
    ) -> None:
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 30)
        handler.start_stream()
        sent: dict[str, dict[str, Any]] = {}
        try:
            while True:
                with self._lock:
                    items = {
                        i["metadata"]["name"]: i for i in self._list(kind.plural, namespace, query)
                    }
                events = []
                for name, item in items.items():
                    before = sent.get(name)
                    if before is None:
                        events.append(("ADDED", item))
                    elif before != item:
                        events.append(("MODIFIED", item))
                events += [("DELETED", old) for name, old in sent.items() if name not in items]
                for kind_of_event, item in events:
                    handler.stream_line({"type": kind_of_event, "object": item})
                sent = items
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
            handler.end_stream()
        except (BrokenPipeError, ConnectionResetError):
            return  # the client stopped watching (it saw what it waited for)

    def _proxy(self, handler: _Handler, namespace: str, service: str, path: str) -> None:
        name = service.partition(":")[0]
        answer = self.proxy_answers.get((namespace, name))
        if answer is not None:
            status, payload = answer(path)
            handler.send_bytes(status, payload, "application/json")
            return
        deployment = self.get("deployments", namespace, name)
        if deployment is None:
            handler.send_json(404, _status(404, "NotFound", f'services "{name}" not found'))
            return
        if not deployment["status"].get("availableReplicas"):
            handler.send_json(503, _status(503, "ServiceUnavailable", "no endpoints available"))
            return
        labels = deployment["spec"]["template"]["metadata"].get("labels", {})
        handler.send_json(200, {"status": "ok", "version": labels.get("version", "")})


_PROTOBUF_MAGIC = b"k8s\x00"


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of one protobuf message (varints and bytes)."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while pos < len(data):
        tag = varint()
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 2:
            size = varint()
            out.append((number, data[pos : pos + size]))
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"protobuf wire type {wire} not handled")
    return out


def _pb_map(entries: list[bytes], decode_value: Callable[[bytes], Any]) -> dict[str, Any]:
    result = {}
    for entry in entries:
        parts = dict(_fields(entry))
        key = parts.get(1, b"")
        value = parts.get(2, b"")
        assert isinstance(key, bytes) and isinstance(value, bytes)
        result[key.decode()] = decode_value(value)
    return result


def _decode_protobuf(raw: bytes) -> dict[str, Any]:
    """A Secret sent as protobuf (client-go's typed clients do, e.g. helm's release
    storage), turned into its JSON form. Besides Secrets only the DeleteOptions of
    `helm uninstall` arrive this way: the fake deletes at once whatever they say."""
    unknown = dict(_fields(raw[len(_PROTOBUF_MAGIC) :]))
    type_meta = dict(_fields(unknown[1]))  # type: ignore[arg-type]
    kind = type_meta.get(2, b"").decode()  # type: ignore[union-attr]
    if kind == "DeleteOptions":
        return {"apiVersion": "v1", "kind": kind}
    if kind != "Secret":
        raise ValueError(f"protobuf body of kind {kind!r}: the fake decodes Secrets only")
    fields = _fields(unknown[2])  # type: ignore[arg-type]
    secret: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {}}
    data: list[bytes] = []
    string_data: list[bytes] = []
    for number, value in fields:
        if number == 1 and isinstance(value, bytes):
            secret["metadata"] = _decode_meta(value)
        elif number == 2 and isinstance(value, bytes):
            data.append(value)
        elif number == 3 and isinstance(value, bytes):
            secret["type"] = value.decode()
        elif number == 4 and isinstance(value, bytes):
            string_data.append(value)
        elif number == 5:
            secret["immutable"] = bool(value)
    if data:
        secret["data"] = _pb_map(data, lambda v: base64.b64encode(v).decode())
    if string_data:
        secret["stringData"] = _pb_map(string_data, lambda v: v.decode())
    return secret


def _decode_meta(raw: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    labels: list[bytes] = []
    annotations: list[bytes] = []
    names = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for number, value in _fields(raw):
        if number in names and isinstance(value, bytes) and value:
            meta[names[number]] = value.decode()
        elif number == 11 and isinstance(value, bytes):
            labels.append(value)
        elif number == 12 and isinstance(value, bytes):
            annotations.append(value)
    if labels:
        meta["labels"] = _pb_map(labels, lambda v: v.decode())
    if annotations:
        meta["annotations"] = _pb_map(annotations, lambda v: v.decode())
    return meta


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class _Handler(BaseHTTPRequestHandler):
    api: FakeKubeApi
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle and delayed
        # ACKs add ~40 ms to every keep-alive request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def send_bytes(self, code: int, payload: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def send_json(self, code: int, body: Any) -> None:
        self.send_bytes(code, json.dumps(body).encode(), "application/json")

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def stream_line(self, body: Any) -> None:
        data = json.dumps(body).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        self.api.handle(self, "GET")

    def do_POST(self) -> None:
        self.api.handle(self, "POST")

    def do_PUT(self) -> None:
        self.api.handle(self, "PUT")

    def do_PATCH(self) -> None:
        self.api.handle(self, "PATCH")

    def do_DELETE(self) -> None:
        self.api.handle(self, "DELETE")
