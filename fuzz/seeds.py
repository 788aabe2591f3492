#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets `http` and `config` into
fuzz/corpus/ (scripts/fuzz grows and minimizes them from there).

http: hand-written request heads for every tracking route, auth form,
content type and encoding, with golden and generated events as bodies
(see crates/fuzz-targets/src/http.rs for the input's first byte).
config: the example and golden config files and variants of every section.
Run from the repository root: python3 fuzz/seeds.py
"""
import base64, glob, gzip, hashlib, json, os, random

random.seed(22)
root = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(root)


def put(target, data):
    d = os.path.join(root, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


events = []
for path in ["testdata/golden/case-study.jsonl", "testdata/golden-compute/events.jsonl"]:
    with open(os.path.join(repo, path), "rb") as f:
        events += [l.strip() for l in f if l.strip()]
# Events the generator wrote, kept by the `event` target's corpus.
gen = sorted(glob.glob(os.path.join(root, "corpus", "event", "*")))
for p in random.sample(gen, min(60, len(gen))):
    with open(p, "rb") as f:
        b = f.read().strip()
    try:
        if isinstance(json.loads(b), dict):
            events.append(b)
    except Exception:
        pass

auth = "Basic " + base64.b64encode(b"wk_source_1:").decode()
heads = {
    "basic": [f"Authorization: {auth}"],
    "basic-nopad": ["Authorization: Basic " + base64.b64encode(b"wk_source_2:").decode().rstrip("=")],
    "unknown": ["Authorization: Basic " + base64.b64encode(b"wk_nobody:").decode()],
    "bearer": ["Authorization: Bearer wk_source_1"],
    "badb64": ["Authorization: Basic !!!"],
    "none": [],
}
singles = ["track", "identify", "page", "screen", "group", "alias"]


def structured(mode, line, headers, body):
    head = "\r\n".join([line, "Host: 127.0.0.1"] + headers).encode()
    return bytes([mode]) + head + b"\n\n" + body


for i, ev in enumerate(events):
    kind = singles[i % len(singles)]
    h = list(heads.values())[i % len(heads)]
    ct = ["Content-Type: application/json", "Content-Type: text/plain", "Content-Type: application/json; charset=utf-8"][i % 3]
    put("http", structured(1 + 2 * (i % 2), f"POST /v1/{kind} HTTP/1.1", h + [ct], ev))
for n in [1, 3, 10]:
    for gz in [0, 2]:
        batch = b'{"batch":[' + b",".join(events[:n]) + b'],"sentAt":"2024-01-01T00:00:00Z","context":{"library":{"name":"analytics.js"}}}'
        put("http", structured(1 + gz, "POST /v1/batch HTTP/1.1", heads["basic"], batch))
        keyed = b'{"writeKey":"wk_source_1","batch":[' + b",".join(events[-n:]) + b"]}"
        put("http", structured(1 + gz, "POST /v1/import HTTP/1.1", [], keyed))
put("http", structured(1, "POST /v1/batch HTTP/1.1", heads["basic"], b'{"batch":[' + b",".join([b"{}"] * 2600) + b"]}"))
put("http", structured(3, "POST /v1/track HTTP/1.1", heads["basic"], b'{"event":"E","userId":"u","properties":{"p":"' + b"x" * 40000 + b'"}}'))


def raw(text):
    return b"\x00" + text


ev = events[0]
req = lambda path, extra, body: (f"POST {path} HTTP/1.1\r\nHost: x\r\n" + "".join(e + "\r\n" for e in extra) + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
put("http", raw(req("/v1/track", [f"Authorization: {auth}"], ev)))
put("http", raw(req("/v1/track", [f"Authorization: {auth}"], ev) * 3))
put("http", raw(req("/v1/track", [f"Authorization: {auth}", "Content-Encoding: x-gzip"], gzip.compress(ev))))
put("http", raw(req("/v1/track", [f"Authorization: {auth}", "Content-Encoding: GZIP"], gzip.compress(ev)[:-9])))
put("http", raw(req("/v1/track", [f"Authorization: {auth}", "Content-Encoding: br"], ev)))
put("http", raw(req("/v1/track", [f"Authorization: {auth}", "Content-Encoding: deflate"], ev)))
put("http", raw(req("/v1/track", [f"Authorization: {auth}", "Content-Encoding: identity"], ev)))
put("http", raw(req("/v1/track", [f"Authorization: {auth}", "Expect: 100-continue"], ev)))
put("http", raw(req("/v1/batch", [f"Authorization: {auth}", "Content-Encoding: gzip"], gzip.compress(b" " * 2_000_000))))
bomb = gzip.compress(b'{"batch":[' + b"{}," * 300_000 + b"{}]}", 9)
put("http", raw(req("/v1/batch", [f"Authorization: {auth}", "Content-Encoding: gzip"], bomb)))
chunked = f"POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
put("http", raw(chunked + b"%x\r\n" % len(ev) + ev + b"\r\n0\r\n\r\n"))
put("http", raw(f"POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 99999999\r\n\r\n".encode() + ev))
put("http", raw(f"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{{}}".encode()))
put("http", raw(b"GET /v1/track HTTP/1.1\r\nHost: x\r\n\r\n"))
put("http", raw(b"POST /v1/nowhere HTTP/1.0\r\n\r\n"))
put("http", raw(b"POST /v1/track HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n"))
put("http", raw(b"POST /v1/track HTTP/1.1\r\nX-Long: " + b"a" * 60000 + b"\r\n\r\n"))
put("http", raw(b"POST /v1/tr\x00ck HTTP/1.1\r\nHost: \xff\r\n\r\n"))
put("http", raw(b"POST /v1/track HTTP/1.1\r\nAuthorization: Basic \xc3\xa9\r\nContent-Length: 2\r\n\r\n{}"))

# Config files.
configs = []
for p in ["examples/case-study.toml", "examples/computed-traits.toml", "testdata/golden/profiles-sync.toml", "testdata/golden-compute/profiles-sync.toml"]:
    with open(os.path.join(repo, p), "rb") as f:
        configs.append(f.read())
ok = b"space = \"s\"\n[[sources]]\nid = \"a\"\nname = \"A\"\nslug = \"a\"\nwrite_key = \"k\"\n"
sections = [
    b"[warehouse]\nurl = \"postgres://u@127.0.0.1/db\"\n",
    b"[sync]\nbatch_events = 1000\ncommit_events = 0\n",
    b"[identity]\nid_scheme = \"sequential\"\nuse_recommended_blocked_values = true\n[[identity.identifiers]]\ntype = \"email\"\npriority = 1\nlimit = 5\nwindow = \"daily\"\nblocked = [\"/^test.*$/\", \"none\"]\n[[identity.identifiers]]\ntype = \"phone\"\nkey = \"phone\"\n",
    b"[server]\nlisten = \"127.0.0.1:9000\"\nsync_interval = \"250ms\"\nmax_inbox_bytes = \"64MB\"\nadmin_token = \"secret-token\"\nmax_event_bytes = 32768\nmax_batch_bytes = \"500KB\"\nmax_batch_events = 2500\nsync_trigger_bytes = \"16MiB\"\nsync_max_events = 100\nsegment_bytes = 4096\nquery_timeout = 1.5\nquery_max_rows = 10\nheader_timeout = \"5s\"\nbody_timeout = 20\nmax_connections = 64\n",
    b"[server]\nsync_interval = 1e30\n",
    b"[server]\nquery_timeout = 1.7976931348623157e308\n",
    b"[server]\nsync_interval = \"500000000000000000000h\"\n",
    b"[server]\nmax_inbox_bytes = \"18446744073709551615 EiB\"\n",
    b"[profile_api]\ntokens = [\"profile-token-1\"]\ntoken_hashes = [\"" + b"a" * 64 + b"\"]\nrate_limit = 50\n",
    b"[compute]\ntick = \"60s\"\nsource_id = \"c\"\nemit_identifies = true\n[[computed_traits]]\nkey = \"orders\"\nkind = \"count\"\nevent = \"Order Completed\"\nwithin = \"30d\"\nwhere = [ { property = \"currency\", op = \"equals\", value = \"USD\" } ]\n[[audiences]]\nkey = \"buyers\"\nall = [ { trait = \"orders\", op = \"gte\", value = 1 } ]\n",
    b"[[sql_traits]]\nkey = \"q\"\nquery = \"select 1\"\nevery = \"1h\"\n",
    b"[[computed_traits]]\nkey = \"seq\"\nkind = \"count\"\nevent = \"E\"\n",
]
configs.append(ok)
configs += [ok + s for s in sections]
configs.append(ok + b"".join(s for s in sections if b"1e30" not in s and b"1.79" not in s and b"50000" not in s and b"EiB" not in s))
for c in configs:
    put("config", c)
