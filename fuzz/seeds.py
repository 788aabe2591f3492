#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets `http`, `config` and `inbox`
into fuzz/corpus/ (scripts/fuzz grows and minimizes them from there).

http: hand-written request heads for every tracking route, auth form,
content type and encoding, with golden and generated events as bodies
(see crates/fuzz-targets/src/http.rs for the input's first byte).
config: the example and golden config files and variants of every section.
inbox: segments of records (encoded here as crates/inbox/src/record.rs
does) holding golden and generated events, cut short and with bits
flipped; record bodies alone; and recipes (crates/fuzz-targets/src/inbox.rs).
Run from the repository root: python3 fuzz/seeds.py [TARGET...]  (default: all)
"""
import base64, glob, gzip, hashlib, json, os, random, struct, sys, zlib

random.seed(22)
root = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(root)


only = set(sys.argv[1:])


def put(target, data):
    if only and target not in only:
        return
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

# Inbox segments: `len u32 | crc32 u32 | body`, the body as Record::encode
# writes it (version 1, little-endian).
def text(t):
    b = t.encode()
    return struct.pack("<H", len(b)) + b


def body(received, sent, key, place, kind, ip, shared, entries):
    out = struct.pack("<Bqq", 1, received, -(2**63) if sent is None else sent)
    out += text(key or "") + text(place) + text(kind or "") + text(ip or "")
    out += struct.pack("<I", len(shared)) + shared + struct.pack("<I", len(entries))
    for k, e in entries:
        out += struct.pack("<BI", k, len(e)) + e
    return out


def frame(b):
    return struct.pack("<II", len(b), zlib.crc32(b)) + b


records = []
for i in range(24):
    n = [0, 1, 2, 5, 10][i % 5]
    evs = [events[(i * 7 + j) % len(events)] for j in range(n)]
    entries = [(1 if len(e) > 900 else 0, e) for e in evs]
    shared = b'{"context":{"library":{"name":"analytics.js"}}}' if i % 4 == 3 else b""
    kind = ["track", "identify", None][i % 3]
    records.append(body(1_700_000_000_000_000 + i, None if i % 2 else 1_699_999_999_000_000 + i,
                        "wk_source_1" if i % 5 else None, "http 127.0.0.1 /v1/" + (kind or "batch"),
                        kind, "127.0.0.1" if i % 3 else "::1", shared, entries))
segments = []
for i in range(8):
    segments.append(b"".join(frame(records[(i * 3 + j) % len(records)]) for j in range(1 + i % 4)))
for seg in segments:
    put("inbox", seg)
    # Torn tails: cut anywhere, in a header or a body.
    for cut in sorted({random.randrange(1, len(seg)) for _ in range(2)} | {len(seg) - 3, 5}):
        put("inbox", seg[:cut])
    # One byte changed: in a length, a checksum, a body.
    for at in [0, 5, random.randrange(8, len(seg))]:
        b = bytearray(seg)
        b[at] ^= 1 << random.randrange(8)
        put("inbox", bytes(b))
for b in records[:6]:
    put("inbox", b)
# Bodies with a matching checksum that refuse: another version, text that is
# not UTF-8, a huge entry count, an unknown entry kind, trailing bytes.
bad = [
    b"\x02" + records[0][1:],
    records[1][:19] + b"\xff\xfe" + records[1][21:] if records[1][17:19] == b"\x0b\x00" else records[1],
    records[0][:-4] + struct.pack("<I", 0xFFFFFFFF) if records[0].endswith(b"\0\0\0\0") else records[0] + b"\xff\xff\xff\xff",
    body(1, None, None, "p", None, None, b"", [(7, b"{}")]),
    records[2] + b"\0",
]
for b in bad:
    put("inbox", frame(b))
    put("inbox", b)
# Recipes: four control bytes (cut or flip, where, the flip's mask), then
# records separated by 0xff, their head and entries by newlines.
for i in range(10):
    parts = [b"\n".join([b"wk_source_1" if j % 2 else b'{"context":{"ip":"1.2.3.4"}}'] + [events[(i + j + k) % len(events)] for k in range(j % 4)]) for j in range(1 + i % 5)]
    ctl = bytes([i % 2, random.randrange(256), random.randrange(256), 1 << (i % 8)])
    put("inbox", ctl + b"\xff".join(parts))
