#!/usr/bin/env bash
# Validates the docker-compose deployment without Docker (CI: ctest compose.check):
#
#   bash compose/check.sh BIN_DIR [COMPOSE_DIR]      e.g. bash compose/check.sh build/bin
#
# BIN_DIR holds the built executables (each build folder passes its own); COMPOSE_DIR is this
# folder unless given. Checks, one line each ("ok" or "FAIL"), exit status 1 on any failure:
#   compose   docker-compose.yml parses as YAML (anchors and merge keys as Compose reads them,
#             ${VAR:-default} taken as its default, ${VAR:?msg} as a test value); every service
#             has an image or a build; depends_on names services (and service_healthy ones
#             have healthchecks); named volumes are declared, bind sources exist; restart set
#   services  each of the five executables is run by one service, as `mce-X -c PATH`, the
#             executable exists in BIN_DIR, PATH is provided by a volume or the Dockerfile and
#             is the same file for all; every MCE_* variable is a real configuration key;
#             secrets come from variables; `mce-X -c <that file> --check-config` accepts the
#             service's environment (the image's ENV, then the service's)
#   topology  the process that binds a ZeroMQ endpoint gets tcp://*:PORT, every other one
#             tcp://<binding service>:PORT; HTTP/WebSocket listen on 0.0.0.0 and are the
#             published container ports; scalable services (gateway, broadcaster) publish
#             host port ranges; Postgres, Redis and the ledger are named by service;
#             healthchecks use the configured ports (/metrics, /api/health); the journals and
#             the settler's keys file lie on volumes (the keys file on the ledger's); CURVE
#             is on and each process gets its key pair and the public keys as secrets
#   image     the Dockerfile's stages (build, runtime, ledger) are Debian 12 based, every COPY
#             source exists and is not excluded by Dockerfile.dockerignore, COPY --from takes
#             what the build stage builds, the runtime stage holds every executable the compose
#             file runs (and mcectl) and runs as a non-root user; the ledger's script and flags
#   configs   every *.cfg in COMPOSE_DIR passes --check-config of every executable
set -uo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: bash compose/check.sh BIN_DIR [COMPOSE_DIR]" >&2
    exit 2
fi
bin_dir=$1
here=${BASH_SOURCE[0]%/*}
[ "$here" = "${BASH_SOURCE[0]}" ] && here=.
compose_dir=${2:-$(cd "$here" && pwd)}

# Debian's python3 has python3-yaml (tools/deps.sh installs it); another python3 first in
# PATH may lack it.
py=
for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' 2>/dev/null; then
        py=$candidate
        break
    fi
done
if [ -z "$py" ]; then
    echo "FAIL python3 with PyYAML (Debian: python3-yaml; tools/deps.sh installs it)"
    exit 1
fi

exec "$py" - "$compose_dir" "$bin_dir" <<'PYTHON'
import copy
import glob
import json
import os
import re
import shlex
import subprocess
import sys

import yaml

COMPOSE_DIR = os.path.abspath(sys.argv[1])
BIN_DIR = os.path.abspath(sys.argv[2])
COMPOSE_FILE = os.path.join(COMPOSE_DIR, "docker-compose.yml")


def rel(path):
    """A path as shown: relative to the folder above COMPOSE_DIR (the repository root)."""
    return os.path.relpath(path, os.path.dirname(COMPOSE_DIR))

EXES = ["mce-matcher", "mce-settler", "mce-persister", "mce-broadcaster", "mce-gateway"]
EXTRA_EXES = ["mcectl"]  # the comments of the compose file tell to run it in a container
# Which process binds each ZeroMQ endpoint (matcher_server.c, settler_server.c, bus_pub.c,
# bus_replay.c, native_port.c, broadcaster_server.c); every other process connects to it.
BINDS = {
    "matcher.commands": "mce-matcher",
    "matcher.bus": "mce-matcher",
    "matcher.replay": "mce-matcher",
    "settler.bus": "mce-settler",
    "settler.replay": "mce-settler",
    "settler.commands": "mce-settler",
    "gateway.native": "mce-gateway",
    "gateway.native_curve": "mce-gateway",
    "broadcaster.xpub": "mce-broadcaster",
}
# HTTP/WebSocket listeners: address key, port key.
LISTENS = {
    "mce-gateway": ("gateway.http_address", "gateway.http_port"),
    "mce-broadcaster": ("broadcaster.ws_address", "broadcaster.ws_port"),
}
# What each healthcheck must ask: common/metrics_http.c serves only GET /metrics (on
# metrics_address, which includes the container's loopback); the gateway answers GET
# /api/health on its HTTP port.
HEALTH = {
    "mce-matcher": ("matcher.metrics_port", "/metrics"),
    "mce-settler": ("settler.metrics_port", "/metrics"),
    "mce-persister": ("persister.metrics_port", "/metrics"),
    "mce-broadcaster": ("broadcaster.metrics_port", "/metrics"),
    "mce-gateway": ("gateway.http_port", "/api/health"),
}
JOURNALS = {"mce-matcher": ("matcher.journal_dir", "matcher"),
            "mce-settler": ("settler.journal_dir", "settler")}
SCALABLE = ["mce-gateway", "mce-broadcaster"]
REQUIRED_STAGES = ["build", "runtime"]
TEST_SECRET = "compose-check-secret-" + "0123456789abcdef" * 3

checks = 0
failures = 0


def check(ok, what, why=""):
    global checks, failures
    checks += 1
    if ok:
        print("ok   " + what)
    else:
        failures += 1
        print("FAIL " + what + (": " + why if why else ""))
    return ok


def finish():
    print("compose check: %d passed, %d failed" % (checks - failures, failures))
    sys.exit(1 if failures else 0)


def clean_env():
    """The caller's environment without MCE_* (they would change what is checked)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MCE_")}


# ------------------------------------------------------------------ interpolation
VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}"
                 r"|([A-Za-z_][A-Za-z0-9_]*))")
required_vars = set()
bare_vars = set()


def interpolate(text):
    """Compose's interpolation with every variable unset: defaults, a test value for
    ${VAR:?msg} (the secrets), "" for bare ${VAR} (reported)."""
    def sub(m):
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4)
        if op in (":?", "?"):
            required_vars.add(name)
            return TEST_SECRET
        if op in (":-", "-"):
            return interpolate(arg or "")
        if op in (":+", "+"):
            return ""
        bare_vars.add(name)
        return ""
    return VAR.sub(sub, text)


def interpolate_tree(node):
    if isinstance(node, str):
        return interpolate(node)
    if isinstance(node, list):
        return [interpolate_tree(x) for x in node]
    if isinstance(node, dict):
        return {k: interpolate_tree(v) for k, v in node.items()}
    return node


def env_dict(env):
    """A service's environment, mapping or KEY=VALUE list, as strings."""
    out = {}
    if isinstance(env, dict):
        for k, v in env.items():
            out[str(k)] = "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
    elif isinstance(env, list):
        for item in env:
            k, _, v = str(item).partition("=")
            out[k] = v
    return out


def as_list(command):
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(x) for x in command]


def volume_entries(svc):
    """(source, target, read_only, kind) of a service's volumes, short or long syntax."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            src, dst = v.get("source", ""), v.get("target", "")
            kind = v.get("type", "volume")
            ro = bool(v.get("read_only"))
        else:
            parts = str(v).split(":")
            if len(parts) == 1:
                src, dst, mode = "", parts[0], ""
            else:
                src, dst, mode = parts[0], parts[1], (parts[2] if len(parts) > 2 else "")
            kind = "bind" if src.startswith((".", "/", "~")) else "volume"
            ro = "ro" in mode.split(",")
        out.append((src, dst, ro, kind))
    return out


def under(path, directory):
    path, directory = os.path.normpath(path), os.path.normpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


# ------------------------------------------------------------------ Dockerfile
def parse_dockerfile(path):
    """[{name, base, instrs: [(INSTR, rest)]}], continuation lines joined, comments dropped."""
    stages, logical, cur = [], [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.strip().startswith("#"):
                continue
            if line.rstrip().endswith("\\"):
                cur += line.rstrip()[:-1] + " "
                continue
            cur += line
            if cur.strip():
                logical.append(cur.strip())
            cur = ""
    if cur.strip():
        logical.append(cur.strip())
    for line in logical:
        instr, _, rest = line.partition(" ")
        instr, rest = instr.upper(), rest.strip()
        if instr == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append({"name": name, "base": words[0] if words else "", "instrs": []})
        elif stages:
            stages[-1]["instrs"].append((instr, rest))
    return stages


def copy_args(rest):
    """(flags, sources, dest) of a COPY/ADD."""
    words = shlex.split(rest)
    flags = {}
    while words and words[0].startswith("--"):
        k, _, v = words.pop(0)[2:].partition("=")
        flags[k] = v
    if words and words[0].startswith("["):
        words = json.loads(" ".join(words))
    return flags, words[:-1], words[-1] if words else ""


def stage_files(stage):
    """container path -> (from stage or None, source path) for a stage's COPY/ADD; the
    WORKDIR and ENV in effect; the last USER."""
    files, workdir, env, user = {}, "/", {}, "root"
    for instr, rest in stage["instrs"]:
        if instr == "WORKDIR":
            workdir = os.path.normpath(os.path.join(workdir, rest))
        elif instr == "USER":
            user = rest.split(":")[0]
        elif instr == "ENV":
            if "=" in rest.split()[0]:
                for w in shlex.split(rest):
                    k, _, v = w.partition("=")
                    env[k] = v
            else:
                k, _, v = rest.partition(" ")
                env[k] = v.strip()
        elif instr in ("COPY", "ADD"):
            flags, srcs, dest = copy_args(rest)
            dest_abs = os.path.normpath(os.path.join(workdir, dest))
            as_dir = dest.endswith("/") or len(srcs) > 1
            for s in srcs:
                target = os.path.join(dest_abs, os.path.basename(s.rstrip("/"))) if as_dir else dest_abs
                files[target] = (flags.get("from"), s)
    return files, workdir, env, user


def provided(files, path):
    """The COPY that provides container path `path` (a file, or a copied folder above it)."""
    path = os.path.normpath(path)
    if path in files:
        return files[path], ""
    for dst, src in files.items():
        if under(path, dst):
            return src, os.path.relpath(path, dst)
    return None, ""


def read_ignore(path):
    pats = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    pats.append(line)
    return pats


def ignore_regex(pat):
    pat = pat.strip("/")
    out, i = "", 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pat.startswith("**", i):
            out += ".*"
            i += 2
        elif pat[i] == "*":
            out += "[^/]*"
            i += 1
        elif pat[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pat[i])
            i += 1
    return re.compile(out)


def ignored(relpath, patterns):
    """Docker's .dockerignore semantics, simplified: a pattern excludes a path or any folder
    above it; later patterns win; "!" re-includes."""
    parts = os.path.normpath(relpath).split("/")
    result = False
    for pat in patterns:
        neg = pat.startswith("!")
        rx = ignore_regex(pat[1:] if neg else pat)
        if any(rx.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            result = not neg
    return result


# ------------------------------------------------------------------ executables
config_keys_cache = {}


def run_check_config(exe, cfg, env):
    """(exit status, {key: value}, message) of `exe [-c cfg] --check-config` with env."""
    args = [os.path.join(BIN_DIR, exe)] + (["-c", cfg] if cfg else []) + ["--check-config"]
    full = clean_env()
    full.update(env)
    try:
        p = subprocess.run(args, env=full, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, {}, str(e)
    values = {}
    for line in (p.stdout + p.stderr).splitlines():
        m = re.search(r" config: ([a-z_][a-z0-9_.\[\]]*) = (.*)$", line)
        if m:
            v = m.group(2)
            if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
                v = v[1:-1]
            values[m.group(1)] = v
    msg = (p.stderr.strip().splitlines() or [""])[-1] if p.returncode else ""
    return p.returncode, values, msg


def config_keys(exe):
    """Every configuration key, as the executable prints them (not markets[i].*)."""
    if exe not in config_keys_cache:
        rc, values, _ = run_check_config(exe, None, {})
        config_keys_cache[exe] = {k for k in values if not k.startswith("markets[")} if rc == 0 else set()
    return config_keys_cache[exe]


def env_name(key):
    return "MCE_" + key.upper().replace(".", "_")


# ================================================================== compose: parse
try:
    with open(COMPOSE_FILE) as f:
        raw_doc = yaml.safe_load(f)
    parsed = isinstance(raw_doc, dict) and isinstance(raw_doc.get("services"), dict)
    check(parsed, "compose: %s parses as YAML with a services mapping" % rel(COMPOSE_FILE),
          "no services mapping")
except (OSError, yaml.YAMLError) as e:
    check(False, "compose: %s parses as YAML" % rel(COMPOSE_FILE),
          str(e).replace("\n", " "))
    parsed = False
if not parsed:
    finish()

doc = interpolate_tree(copy.deepcopy(raw_doc))
services = doc["services"]
raw_services = raw_doc["services"]
top_volumes = doc.get("volumes") or {}
check(not bare_vars, "compose: every variable has a default or is required (${VAR:-x}, ${VAR:?msg})",
      "bare: " + ", ".join(sorted(bare_vars)))

# ------------------------------------------------------------------ compose: structure
for name, svc in services.items():
    if not isinstance(svc, dict):
        check(False, "compose: service %s is a mapping" % name)
        continue
    check("image" in svc or "build" in svc, "compose: service %s has an image or a build" % name)
    deps = svc.get("depends_on") or {}
    dep_items = deps.items() if isinstance(deps, dict) else [(d, {}) for d in deps]
    bad = []
    for dep, spec in dep_items:
        cond = (spec or {}).get("condition", "service_started")
        if dep not in services:
            bad.append("%s (no such service)" % dep)
        elif cond not in ("service_started", "service_healthy", "service_completed_successfully"):
            bad.append("%s (condition %s)" % (dep, cond))
        elif cond == "service_healthy" and not (services[dep] or {}).get("healthcheck"):
            bad.append("%s (service_healthy, but it has no healthcheck)" % dep)
    check(not bad, "compose: service %s depends_on existing services (%s)"
          % (name, ", ".join(d for d, _ in dep_items) or "none"), "; ".join(bad))
    vbad = []
    for src, dst, _, kind in volume_entries(svc):
        if kind == "volume" and src and src not in top_volumes:
            vbad.append("volume %s is not declared under volumes:" % src)
        if kind == "bind" and not os.path.exists(os.path.join(COMPOSE_DIR, os.path.expanduser(src))):
            vbad.append("bind source %s does not exist" % src)
        if not dst.startswith("/"):
            vbad.append("target %s is not absolute" % dst)
    if svc.get("volumes"):
        check(not vbad, "compose: service %s volumes exist" % name, "; ".join(vbad))
    check(svc.get("restart") in ("unless-stopped", "always"),
          "compose: service %s restarts (unless-stopped)" % name, "restart: %s" % svc.get("restart"))
    check(bool(svc.get("healthcheck")), "compose: service %s has a healthcheck" % name)

# ------------------------------------------------------------------ Dockerfile
builds = {}
for name, svc in services.items():
    b = svc.get("build")
    if b is None:
        continue
    if isinstance(b, str):
        b = {"context": b}
    context = os.path.normpath(os.path.join(COMPOSE_DIR, b.get("context", ".")))
    dockerfile = os.path.normpath(os.path.join(context, b.get("dockerfile", "Dockerfile")))
    builds[name] = (context, dockerfile, b.get("target"))
contexts = {(c, d) for c, d, _ in builds.values()}
check(len(contexts) == 1, "image: every service builds from one Dockerfile and context",
      "; ".join("%s %s" % cd for cd in sorted(contexts)))
if not contexts:
    finish()
CONTEXT, DOCKERFILE = sorted(contexts)[0]
check(os.path.isfile(os.path.join(CONTEXT, "CMakeLists.txt")),
      "image: the build context %s is the repository root" % CONTEXT)
if not check(os.path.isfile(DOCKERFILE), "image: %s exists" % rel(DOCKERFILE)):
    finish()
stages = parse_dockerfile(DOCKERFILE)
stage_by_name = {s["name"]: s for s in stages if s["name"]}
for st in REQUIRED_STAGES + sorted({t for _, _, t in builds.values() if t} - set(REQUIRED_STAGES)):
    check(st in stage_by_name, "image: the Dockerfile has a stage named %s" % st,
          "stages: %s" % ", ".join(s["name"] or "?" for s in stages))
names_so_far = set()
for s in stages:
    base = s["base"]
    check(base in names_so_far or "bookworm" in base,
          "image: stage %s is Debian 12 based (FROM %s)" % (s["name"], base))
    names_so_far.add(s["name"])

ignore_file = DOCKERFILE + ".dockerignore"
patterns = read_ignore(ignore_file)
if check(os.path.isfile(ignore_file), "image: %s exists" % rel(ignore_file)):
    samples = [".git/HEAD", "build/bin/mce-matcher", "build-compose/bin/mce-matcher", ".run/data/x",
               "tools/ledger/node_modules/litesvm/package.json", "tests/browser/node_modules/x"]
    leaks = [p for p in samples if not ignored(p, patterns)]
    check(not leaks, "image: the .dockerignore excludes .git, build*/, .run/, node_modules",
          "not excluded: " + ", ".join(leaks))

stage_info = {}
for s in stages:
    stage_info[s["name"]] = stage_files(s)
    for instr, rest in s["instrs"]:
        if instr not in ("COPY", "ADD"):
            continue
        flags, srcs, dest = copy_args(rest)
        if "from" in flags:
            src_stage = stage_by_name.get(flags["from"])
            if not check(src_stage is not None and stages.index(src_stage) < stages.index(s),
                         "image: %s: COPY --from=%s names an earlier stage" % (s["name"], flags["from"])):
                continue
            # what that stage builds: `cmake -B DIR ... --target a b c`, into DIR/bin
            wd, built, bdir = "/", set(), None
            for i2, r2 in src_stage["instrs"]:
                if i2 == "WORKDIR":
                    wd = os.path.normpath(os.path.join(wd, r2))
                if i2 == "RUN":
                    m = re.search(r"-B\s+(\S+)", r2)
                    if m:
                        bdir = os.path.normpath(os.path.join(wd, m.group(1)))
                    m = re.search(r"--target\s+((?:[\w.+-]+\s*)+)", r2)
                    if m:
                        built |= set(m.group(1).split())
            for src in srcs:
                exe = os.path.basename(src)
                ok = bdir and os.path.normpath(src) == os.path.join(bdir, "bin", exe) and exe in built
                if check(bool(ok), "image: %s: COPY --from=%s %s is built there" % (s["name"], flags["from"], src),
                         "the stage builds %s into %s/bin" % (" ".join(sorted(built)) or "nothing", bdir)):
                    check(os.access(os.path.join(BIN_DIR, exe), os.X_OK),
                          "image: %s: %s is a target of this build too (%s)" % (s["name"], exe, rel(BIN_DIR)))
        else:
            for src in srcs:
                matches = glob.glob(os.path.join(CONTEXT, src))
                src_rel = os.path.relpath(os.path.join(CONTEXT, src), CONTEXT)
                check(bool(matches) and not ignored(src_rel, patterns),
                      "image: %s: COPY source %s exists and is not .dockerignored" % (s["name"], src),
                      "excluded by %s" % rel(ignore_file) if matches else "no such file in %s" % CONTEXT)

# ================================================================== services
by_exe = {}
for name, svc in services.items():
    cmd = as_list(svc.get("command"))
    if cmd and cmd[0] in EXES:
        by_exe.setdefault(cmd[0], []).append(name)
    elif cmd and cmd[0].startswith("mce-"):
        check(False, "services: %s runs %s, one of %s" % (name, cmd[0], ", ".join(EXES)))
for exe in EXES:
    check(len(by_exe.get(exe, [])) == 1, "services: %s is run by one service (%s)"
          % (exe, ", ".join(by_exe.get(exe, [])) or "none"))
svc_of = {exe: names[0] for exe, names in by_exe.items() if names}

cfg_sources = set()
effective = {}   # service -> {key: value}
service_env = {}
for exe in EXES:
    name = svc_of.get(exe)
    if not name:
        continue
    svc, raw = services[name], raw_services[name]
    cmd = as_list(svc.get("command"))
    path = os.path.join(BIN_DIR, exe)
    check(os.path.isfile(path) and os.access(path, os.X_OK),
          "services: %s: %s exists in %s" % (name, exe, BIN_DIR))
    target = builds.get(name, (None, None, None))[2]
    files, _, image_env, user = stage_info.get(target, ({}, "/", {}, "root"))
    check(target in stage_by_name, "services: %s: builds the Dockerfile stage %s" % (name, target))
    check(user not in ("root", "0"), "services: %s: the image runs as a non-root user (%s)" % (name, user))
    for e in [exe] + EXTRA_EXES:
        src, _ = provided(files, "/usr/local/bin/" + e)
        check(src is not None, "services: %s: stage %s puts %s in /usr/local/bin" % (name, target, e))
    if not check(len(cmd) == 3 and cmd[1] in ("-c", "--config") and cmd[2].startswith("/"),
                 "services: %s: command is [%s, -c, /absolute/path]" % (name, exe),
                 "got %s" % cmd):
        continue
    cfg_path = cmd[2]
    cfg_file = None
    for src, dst, _, kind in volume_entries(svc):
        if os.path.normpath(dst) == os.path.normpath(cfg_path) and kind == "bind":
            cfg_file = os.path.normpath(os.path.join(COMPOSE_DIR, src))
    copied, _ = provided(files, cfg_path)
    if copied and copied[0] is None:
        copied_file = os.path.normpath(os.path.join(CONTEXT, copied[1]))
        if cfg_file and copied_file != cfg_file:
            check(False, "services: %s: the mounted and the copied %s are one file" % (name, cfg_path),
                  "%s vs %s" % (cfg_file, copied_file))
        cfg_file = cfg_file or copied_file
    if not check(cfg_file is not None and os.path.isfile(cfg_file),
                 "services: %s: %s is provided (%s)" % (name, cfg_path,
                                                       rel(cfg_file) if cfg_file else "nothing"),
                 "neither a volume nor the Dockerfile provides it"):
        continue
    cfg_sources.add(cfg_file)

    env = dict(image_env)
    env.update(env_dict(svc.get("environment")))
    service_env[name] = env
    keys = config_keys(exe)
    unknown = [k for k in env if k.startswith("MCE_") and k not in {env_name(x) for x in keys}]
    check(bool(keys) and not unknown, "services: %s: every MCE_* variable is a configuration key" % name,
          ("not keys: " + ", ".join(unknown)) if keys else "%s --check-config failed" % exe)
    rc, values, msg = run_check_config(exe, cfg_file, env)
    check(rc == 0, "services: %s: %s -c %s --check-config accepts its environment"
          % (name, exe, rel(cfg_file)), msg or "exit status %d" % rc)
    if rc == 0:
        effective[name] = values
    raw_env = env_dict(raw.get("environment"))
    for k, v in env.items():
        secret = any(env_name(x) == k and values.get(x) == "(set, not shown)" for x in keys)
        if secret:
            check("${" in raw_env.get(k, ""), "services: %s: the secret %s comes from a variable" % (name, k),
                  "written in the file")

check(len(cfg_sources) == 1, "services: every process reads the same configuration file (%s)"
      % ", ".join(sorted(rel(c) for c in cfg_sources)))

# ------------------------------------------------------------------ topology
# (from the effective values, so only when every service's --check-config passed)
if check(len(effective) == len(EXES), "topology: every service's effective configuration is known",
         "not checked: a --check-config above failed"):
    for key, exe in BINDS.items():
        binder = svc_of[exe]
        m = re.fullmatch(r"tcp://(\*|0\.0\.0\.0):(\d+)", effective[binder].get(key, ""))
        if not check(bool(m), "topology: %s: %s binds tcp://*:PORT (%s)" % (key, binder, effective[binder].get(key)),
                     "a bind does not resolve host names"):
            continue
        want = "tcp://%s:%s" % (binder, m.group(2))
        wrong = ["%s has %s" % (n, v.get(key)) for n, v in effective.items() if n != binder and v.get(key) != want]
        check(not wrong, "topology: %s: the others connect to %s" % (key, want), "; ".join(wrong))
    for exe, (addr_key, port_key) in LISTENS.items():
        name = svc_of[exe]
        addr, port = effective[name].get(addr_key), effective[name].get(port_key)
        check(addr == "0.0.0.0", "topology: %s: %s = 0.0.0.0" % (name, addr_key), "got %s" % addr)
        for p in services[name].get("ports") or []:
            spec = str(p.get("target")) if isinstance(p, dict) else str(p)
            container = spec.split(":")[-1].split("/")[0]
            check(container == port, "topology: %s: publishes its %s %s (%s)" % (name, port_key, port, spec),
                  "container port %s" % container)
    for exe in SCALABLE:
        name = svc_of[exe]
        pinned = []
        for p in services[name].get("ports") or []:
            if isinstance(p, dict):
                host = str(p.get("published", ""))
            else:
                parts = str(p).split(":")
                host = parts[-2] if len(parts) >= 2 else ""
            if host and not re.fullmatch(r"\d+-\d+", host):
                pinned.append(str(p))
        check(not pinned and "container_name" not in services[name],
              "topology: %s scales: no single host port, no container_name" % name, ", ".join(pinned))
    # the token key: one for all gateways and broadcasters, required from the environment
    for exe in ("mce-gateway", "mce-broadcaster"):
        name = svc_of[exe]
        check(service_env[name].get("MCE_GATEWAY_JWT_SECRET") == TEST_SECRET,
              "topology: %s: gateway.jwt_secret is required from the environment (${VAR:?msg})" % name,
              "not set, or not ${VAR:?msg}")
    # the stores and the ledger, by service name
    for name, env in service_env.items():
        url = env.get("MCE_POSTGRES_URL")
        if url:
            m = re.search(r"(?:^|\s)host=(\S+)", url) or re.match(r"postgres(?:ql)?://(?:[^@/]*@)?([^:/?]+)", url)
            check(bool(m) and m.group(1) in services, "topology: %s: postgres.url names a service (%s)"
                  % (name, m.group(1) if m else "?"))
        url = effective[name].get("redis.url", "")
        if url and "MCE_REDIS_URL" in env:
            m = re.match(r"redis://(?:[^@/]*@)?([^:/]+)", url)
            check(bool(m) and m.group(1) in services, "topology: %s: redis.url names a service (%s)" % (name, url))
    settler = svc_of["mce-settler"]
    rpc = effective[settler].get("settler.rpc_url", "")
    m = re.match(r"https?://([^:/]+)(?::(\d+))?", rpc)
    host = m.group(1) if m else ""
    if check(host in services, "topology: settler.rpc_url names a service (%s)" % rpc):
        lcmd = as_list(services[host].get("command"))
        lport = lcmd[lcmd.index("--port") + 1] if "--port" in lcmd[:-1] else None
        lhost = lcmd[lcmd.index("--host") + 1] if "--host" in lcmd[:-1] else "127.0.0.1"
        check(lport == (m.group(2) or "80") and lhost in ("0.0.0.0", "::"),
              "topology: %s listens on 0.0.0.0:%s" % (host, m.group(2)), "--host %s --port %s" % (lhost, lport))
    # healthchecks ask the configured ports
    for exe, (key, path) in HEALTH.items():
        name = svc_of[exe]
        test = services[name].get("healthcheck", {}).get("test", [])
        text = " ".join(as_list(test) if not isinstance(test, str) else [test])
        want = ":%s%s" % (effective[name].get(key), path)
        check(re.search(r"//(127\.0\.0\.1|localhost)" + re.escape(want), text) is not None,
              "topology: %s: the healthcheck asks %s (127.0.0.1%s)" % (name, key, want), "test: %s" % text)
    # journals and keys on volumes
    for exe, (key, sub) in JOURNALS.items():
        name = svc_of[exe]
        vals = effective[name]
        jdir = vals.get(key) or os.path.join(vals.get("data_dir", ""), sub)
        vols = [(s, d) for s, d, ro, kind in volume_entries(services[name]) if kind == "volume" and not ro]
        on = [s for s, d in vols if under(jdir, d)]
        check(jdir.startswith("/") and bool(on), "topology: %s: the journal %s is on a volume (%s)"
              % (name, jdir, ", ".join(on) or "none"))
    keys_file = effective[settler].get("settler.keys_file", "")
    if keys_file:
        vols = {s: d for s, d, _, kind in volume_entries(services[settler]) if kind == "volume"}
        on = [s for s, d in vols.items() if under(keys_file, d)]
        ok = False
        if on and host in services:
            lcmd = as_list(services[host].get("command"))
            setup = lcmd[lcmd.index("--setup-out") + 1] if "--setup-out" in lcmd[:-1] else ""
            for s, d, _, kind in volume_entries(services[host]):
                if s == on[0] and setup and under(setup, d):
                    ok = os.path.relpath(setup, d) == os.path.relpath(keys_file, vols[on[0]])
        check(ok, "topology: settler.keys_file %s is the setup file %s writes into a shared volume"
              % (keys_file, host))
    # CurveZMQ keys: each process's own pair and the public folder, as compose secrets from
    # compose/keys (made by `mcectl keys init`, never in the repository)
    top_secrets = doc.get("secrets") or {}
    for exe, name in svc_of.items():
        keys_dir = effective[name].get("security.keys_dir", "")
        process = exe[len("mce-"):]
        want = {"%s/%s.secret" % (keys_dir, process): "keys/%s.secret" % process,
                "%s/public" % keys_dir: "keys/public"}
        got = {}
        for entry in services[name].get("secrets") or []:
            if isinstance(entry, dict) and entry.get("source") in top_secrets:
                got[entry.get("target")] = os.path.normpath(top_secrets[entry["source"]].get("file", ""))
        missing = [t for t, f in want.items() if got.get(t) != f]
        check(keys_dir.startswith("/") and effective[name].get("security.curve") == "true" and not missing,
              "topology: %s: CURVE on, its key pair and the public keys are secrets in %s" % (name, keys_dir),
              "missing or wrong: " + ", ".join(missing))
    for name, values in effective.items():
        check(values.get("data_dir", "").startswith("/"),
              "topology: %s: data_dir %s is absolute" % (name, values.get("data_dir")))

# ------------------------------------------------------------------ the ledger
for name, svc in services.items():
    cmd = as_list(svc.get("command"))
    if not cmd or cmd[0] != "node" or len(cmd) < 2:
        continue
    target = builds.get(name, (None, None, None))[2]
    files, workdir, _, user = stage_info.get(target, ({}, "/", {}, "root"))
    src, restpath = provided(files, os.path.join(workdir, cmd[1]))
    script = os.path.join(CONTEXT, src[1], restpath) if src and src[0] is None else None
    script = script.rstrip("/") if script else None
    if check(script is not None and os.path.isfile(script),
             "image: %s: stage %s provides %s" % (name, target, cmd[1])):
        text = open(script).read()
        flags = [a for a in cmd[2:] if a.startswith("--")]
        unknown = [f for f in flags if ("'%s'" % f) not in text]
        check(not unknown, "image: %s: %s knows the flags %s" % (name, os.path.relpath(script, CONTEXT), " ".join(flags)),
              "unknown: " + " ".join(unknown))
    check(user not in ("root", "0"), "image: %s: the image runs as a non-root user (%s)" % (name, user))

# ================================================================== configs
cfgs = sorted(glob.glob(os.path.join(COMPOSE_DIR, "**", "*.cfg"), recursive=True))
check(bool(cfgs), "configs: %s holds *.cfg files" % rel(COMPOSE_DIR))
for cfg in cfgs:
    for exe in EXES:
        rc, _, msg = run_check_config(exe, cfg, {})
        check(rc == 0, "configs: %s -c %s --check-config" % (exe, rel(cfg)), msg or "exit status %d" % rc)

# ================================================================== Compose itself
# Where Compose is installed (not in CI), its own validator reads the file too.
import shutil
compose_cmd = None
if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                             stdin=subprocess.DEVNULL).returncode == 0:
    compose_cmd = ["docker", "compose"]
elif shutil.which("docker-compose"):
    compose_cmd = ["docker-compose"]
if compose_cmd:
    env = clean_env()
    env.update({v: TEST_SECRET for v in required_vars})
    p = subprocess.run(compose_cmd + ["-f", COMPOSE_FILE, "config", "-q"], env=env, capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    check(p.returncode == 0, "compose: `%s config` accepts the file" % " ".join(compose_cmd),
          " ".join(p.stderr.split())[:400])
else:
    print("skip compose: no docker compose or docker-compose here to validate the file itself")

finish()
PYTHON
