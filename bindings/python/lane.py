"""lane.py -- a ctypes binding of liblane (and liblane-json) for Python hosts.

    import lane
    prog = lane.Program.load("support.lanec")     # a compiled, verified policy
    rt = lane.Runtime(prog)                        # live stats, breakers, budgets
    req = prog.request(tier="free", input_tokens=1200, max_output_tokens=300)
    d = rt.decide("support", req)                  # d.primary, d.fallbacks, d.cost
    rt.observe(d.primary, 840.0, lane.CALL_OK)     # after the call
    rt.charge(req, 0.0004)                         # actual spend, dollars

Requests can also come straight from an OpenAI or Anthropic body
(prog.request_from_json(body)); rt.explain(route, req) prints what
`lane eval --explain` says about the same decision.

Libraries are found in $LANE_LIBDIR, else the repository's build/ beside
this file, else by the system loader (an installed liblane.so.0). Python
3.8+, standard library only. The C library never raises or prints; this
module turns its statuses into LaneError.
"""

import ctypes
import ctypes.util
import json
import os
import struct
import subprocess
import tempfile

__all__ = ["Program", "Runtime", "Request", "Decision", "LaneError",
           "OPENAI_CHAT", "ANTHROPIC_MESSAGES", "CALL_FAILED", "CALL_OK",
           "CALL_RATE_LIMITED", "CALL_SERVER_ERROR", "CALL_TIMEOUT",
           "CALL_CLIENT_ERROR"]

# lane.h constants
OPENAI_CHAT, ANTHROPIC_MESSAGES = 1, 2
(CALL_FAILED, CALL_OK, CALL_RATE_LIMITED, CALL_SERVER_ERROR, CALL_TIMEOUT,
 CALL_CLIENT_ERROR) = range(6)
T_INT, T_UINT, T_DOUBLE, T_BOOL, T_STRING, T_MAP, T_LIST = 1, 2, 3, 4, 5, 6, 7
OK, ENOMEM, EFORMAT, EVERSION, ELIMIT, EARG, ENOMATCH, EJSON = range(8)
MAX_FIELDS, MAX_CANDIDATES, MAX_SHADOWS, REQUEST_TEXT = 64, 9, 4, 1024
EVENT_KINDS = {1: "rule", 2: "match", 3: "error", 4: "member", 5: "chosen", 6: "shadow",
               7: "select"}
BREAKER_STATES = {0: "closed", 1: "open", 2: "half_open"}


# ---- the C structs of lane.h ----------------------------------------------

class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("line", ctypes.c_int),
                ("message", ctypes.c_char * 200)]


class _Str(ctypes.Structure):
    _fields_ = [("p", ctypes.c_void_p), ("n", ctypes.c_size_t)]


class _Value(ctypes.Union):
    _fields_ = [("i", ctypes.c_int64), ("u", ctypes.c_uint64),
                ("d", ctypes.c_double), ("s", _Str)]


class _Entry(ctypes.Structure):
    _fields_ = [("key", ctypes.c_char_p), ("klen", ctypes.c_size_t), ("v", _Value)]


class _Request(ctypes.Structure):
    _fields_ = [("prog", ctypes.c_void_p), ("set", ctypes.c_uint64),
                ("nv", ctypes.c_uint32), ("room", ctypes.c_uint32),
                ("ntext", ctypes.c_uint32), ("compact", ctypes.c_uint32),
                ("v", _Value * MAX_FIELDS),
                ("text", ctypes.c_char * REQUEST_TEXT)]


class _Decision(ctypes.Structure):
    _fields_ = [("route", ctypes.c_int), ("rule", ctypes.c_int),
                ("ncandidates", ctypes.c_int),
                ("candidates", ctypes.c_int * MAX_CANDIDATES),
                ("nshadows", ctypes.c_int), ("shadows", ctypes.c_int * MAX_SHADOWS),
                ("cost", ctypes.c_double), ("steps", ctypes.c_uint32),
                ("nerrors", ctypes.c_int), ("error_line", ctypes.c_int),
                ("filtered_rule", ctypes.c_int), ("probed", ctypes.c_uint),
                ("output_tokens", ctypes.c_int64), ("output_from", ctypes.c_int)]


class _Outcome(ctypes.Structure):
    _fields_ = [("id", ctypes.c_char_p), ("ts_ms", ctypes.c_uint64), ("model", ctypes.c_int),
                ("attempts", ctypes.c_int), ("fallbacks", ctypes.c_int), ("status", ctypes.c_int),
                ("latency_ms", ctypes.c_double), ("input_tokens", ctypes.c_int64),
                ("output_tokens", ctypes.c_int64), ("cost", ctypes.c_double),
                ("has_score", ctypes.c_int), ("score", ctypes.c_double),
                ("attempt", ctypes.c_int), ("final", ctypes.c_int), ("error", ctypes.c_char_p),
                ("shadow", ctypes.c_int)]


class _Event(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("rule", ctypes.c_int), ("model", ctypes.c_int),
                ("passed", ctypes.c_int), ("line", ctypes.c_int), ("cost", ctypes.c_double),
                ("check", ctypes.c_int)]


class _Trace(ctypes.Structure):
    _fields_ = [("events", ctypes.POINTER(_Event)), ("cap", ctypes.c_int),
                ("n", ctypes.c_int), ("truncated", ctypes.c_int)]


class _LiveStats(ctypes.Structure):
    _fields_ = [("p50", ctypes.c_double), ("p95", ctypes.c_double),
                ("error_rate", ctypes.c_double), ("samples", ctypes.c_uint64),
                ("state", ctypes.c_int), ("until_ms", ctypes.c_uint64)]


_NoteFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)


class _StateReport(ctypes.Structure):
    _fields_ = [("note", _NoteFn), ("note_ctx", ctypes.c_void_p),
                ("budgets_kept", ctypes.c_uint32), ("budgets_dropped", ctypes.c_uint32),
                ("budgets_new", ctypes.c_uint32), ("budgets_shifted", ctypes.c_uint32),
                ("keys_kept", ctypes.c_uint64), ("keys_expired", ctypes.c_uint64),
                ("keys_overflowed", ctypes.c_uint64), ("models_kept", ctypes.c_uint32),
                ("models_dropped", ctypes.c_uint32), ("nnotes", ctypes.c_uint32),
                ("notes", ctypes.c_char * 1024)]


# ---- loading the libraries ------------------------------------------------

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))


def _open(stem, mode=ctypes.DEFAULT_MODE):
    """The library lib<stem>.so from LANE_LIBDIR, build/, the lib/ of the
    prefix this module is installed under (`make install` puts it in
    PREFIX/lib/pythonX.Y/site-packages), or the system."""
    dirs = [os.environ.get("LANE_LIBDIR"), os.path.join(_REPO, "build"),
            os.path.normpath(os.path.join(_HERE, "..", ".."))]
    for d in dirs:
        if d and os.path.exists(os.path.join(d, "lib%s.so" % stem)):
            return ctypes.CDLL(os.path.join(d, "lib%s.so" % stem), mode=mode)
    found = ctypes.util.find_library(stem)
    if found:
        return ctypes.CDLL(found, mode=mode)
    raise OSError("cannot find lib%s.so: set LANE_LIBDIR or run make" % stem)


def _declare(lib, name, res, *args):
    f = getattr(lib, name)
    f.restype, f.argtypes = res, list(args)


_P, _R = ctypes.c_void_p, ctypes.c_void_p
_lib = _open("lane", ctypes.RTLD_GLOBAL)
# matches() needs a regular-expression engine: liblane-re's, when it is
# there (a policy with matches() fails to load without one, saying so).
try:
    _re = _open("lane-re")
    _re.lane_regex_pcre2.restype = ctypes.c_void_p
    _lib.lane_regex_install.argtypes = [ctypes.c_void_p]
    _lib.lane_regex_install.restype = None
    _lib.lane_regex_install(_re.lane_regex_pcre2())
except OSError:
    _re = None
for _n, _res, _args in [
        ("lane_status_name", ctypes.c_char_p, [ctypes.c_int]),
        ("lane_load", _P, [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_Error)]),
        ("lane_program_free", None, [_P]),
        ("lane_route_count", ctypes.c_int, [_P]),
        ("lane_route_name", ctypes.c_char_p, [_P, ctypes.c_int]),
        ("lane_route", ctypes.c_int, [_P, ctypes.c_char_p]),
        ("lane_rule_name", ctypes.c_char_p, [_P, ctypes.c_int, ctypes.c_int]),
        ("lane_model_count", ctypes.c_int, [_P]),
        ("lane_model_name", ctypes.c_char_p, [_P, ctypes.c_int]),
        ("lane_model_provider", ctypes.c_char_p, [_P, ctypes.c_int]),
        ("lane_model_id", ctypes.c_char_p, [_P, ctypes.c_int]),
        ("lane_field", ctypes.c_int, [_P, ctypes.c_char_p]),
        ("lane_field_count", ctypes.c_int, [_P]),
        ("lane_field_name", ctypes.c_char_p, [_P, ctypes.c_int]),
        ("lane_field_type", ctypes.c_int, [_P, ctypes.c_int]),
        ("lane_field_unit", ctypes.c_char_p, [_P, ctypes.c_int]),
        ("lane_request_init", None, [ctypes.POINTER(_Request), _P]),
        ("lane_set_str", ctypes.c_int, [ctypes.POINTER(_Request), ctypes.c_int,
                                        ctypes.c_char_p, ctypes.c_size_t]),
        ("lane_set_int", ctypes.c_int, [ctypes.POINTER(_Request), ctypes.c_int, ctypes.c_int64]),
        ("lane_set_uint", ctypes.c_int, [ctypes.POINTER(_Request), ctypes.c_int,
                                         ctypes.c_uint64]),
        ("lane_set_double", ctypes.c_int, [ctypes.POINTER(_Request), ctypes.c_int,
                                           ctypes.c_double]),
        ("lane_set_bool", ctypes.c_int, [ctypes.POINTER(_Request), ctypes.c_int, ctypes.c_int]),
        ("lane_set_map", ctypes.c_int, [ctypes.POINTER(_Request), ctypes.c_int,
                                        ctypes.POINTER(_Entry), ctypes.c_size_t]),
        ("lane_set_list", ctypes.c_int, [ctypes.POINTER(_Request), ctypes.c_int,
                                         ctypes.POINTER(_Value), ctypes.c_size_t]),
        ("lane_runtime_new", _R, [_P, ctypes.POINTER(_Error)]),
        ("lane_runtime_free", None, [_R]),
        ("lane_observe", None, [_R, ctypes.c_int, ctypes.c_double, ctypes.c_int]),
        ("lane_charge", ctypes.c_int, [_R, ctypes.POINTER(_Request), ctypes.c_double]),
        ("lane_model_stats", ctypes.c_int, [_R, ctypes.c_int, ctypes.POINTER(_LiveStats)]),
        ("lane_budget", ctypes.c_int, [_P, ctypes.c_char_p]),
        ("lane_budget_key_hash", ctypes.c_uint64, [_P, ctypes.c_int, ctypes.c_char_p,
                                                   ctypes.c_size_t]),
        ("lane_budget_spent", ctypes.c_int, [_R, ctypes.c_int, ctypes.c_uint64,
                                             ctypes.POINTER(ctypes.c_double)]),
        ("lane_runtime_snapshot", ctypes.c_size_t, [_R, ctypes.c_char_p, ctypes.c_size_t]),
        ("lane_runtime_swap", ctypes.c_int, [_R, _P, ctypes.POINTER(_StateReport),
                                             ctypes.POINTER(_Error)]),
        ("lane_runtime_acquire", _R, [_R]),
        ("lane_runtime_release", None, [_R]),
        ("lane_runtime_program", _P, [_R]),
        ("lane_runtime_generation", ctypes.c_uint64, [_R]),
        ("lane_decide_route", ctypes.c_int, [_R, ctypes.c_int, ctypes.POINTER(_Request),
                                             ctypes.POINTER(_Decision)]),
        ("lane_decide_traced", ctypes.c_int, [_R, ctypes.c_int, ctypes.POINTER(_Request),
                                              ctypes.POINTER(_Decision),
                                              ctypes.POINTER(_Trace)]),
        ("lane_cost", ctypes.c_double, [_P, ctypes.POINTER(_Request), ctypes.c_int]),
        ("lane_explain_text", ctypes.c_size_t, [_R, ctypes.c_int, ctypes.POINTER(_Request),
                                                ctypes.c_int, ctypes.POINTER(_Decision),
                                                ctypes.POINTER(_Trace), ctypes.c_void_p,
                                                ctypes.c_char_p, ctypes.c_size_t]),
        ("lane_check_name", ctypes.c_char_p, [ctypes.c_int]),
        ("lane_log_decision", ctypes.c_size_t, [_R, ctypes.c_int, ctypes.POINTER(_Request),
                                                ctypes.c_int, ctypes.POINTER(_Decision),
                                                ctypes.c_char_p, ctypes.c_char_p,
                                                ctypes.c_char_p, ctypes.c_size_t]),
        ("lane_log_outcome", ctypes.c_size_t, [_P, ctypes.POINTER(_Outcome), ctypes.c_char_p,
                                               ctypes.c_size_t]),
        ("lane_version", ctypes.c_char_p, []),
        ("lane_abi_version", ctypes.c_int, []),
        ("lane_abi_check", ctypes.c_int, [ctypes.c_int, ctypes.POINTER(ctypes.c_size_t),
                                          ctypes.c_int, ctypes.POINTER(_Error)])]:
    _declare(_lib, _n, _res, *_args)

# The structs above mirror lane.h of ABI_VERSION; the library checks that
# it has the same ABI and struct sizes before anything else runs, so that a
# liblane of another layout is refused here with its reason rather than
# misread later. tests: test_lane.py compares every field offset with C's.
ABI_VERSION = 5
_ABI_STRUCTS = (_Error, _Request, _Decision, _Event, _Trace, _LiveStats)
_sizes = (ctypes.c_size_t * len(_ABI_STRUCTS))(*[ctypes.sizeof(t) for t in _ABI_STRUCTS])
_abi_err = _Error()
if _lib.lane_abi_check(ABI_VERSION, _sizes, len(_ABI_STRUCTS), ctypes.byref(_abi_err)) != 0:
    raise ImportError("lane.py cannot use this liblane: "
                      + _abi_err.message.decode("utf-8", "replace"))
__liblane_version__ = _lib.lane_version().decode()
_json = None   # liblane-json, opened on first use


def _json_lib():
    global _json
    if _json is None:
        _json = _open("lane-json")
        _declare(_json, "lane_request_from_json", ctypes.c_int, ctypes.POINTER(_Request),
                 ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.POINTER(_Error))
    return _json


def _text(fn, *args):
    """The text of one of liblane's writers with snprintf's contract: asked
    for its length, then written into a buffer of that size."""
    n = fn(*args, None, 0)
    buf = ctypes.create_string_buffer(n + 1)
    fn(*args, buf, n + 1)
    return buf.value.decode("utf-8", "replace")


def _s(b):
    return b.decode("utf-8", "replace") if b is not None else None


class LaneError(Exception):
    """A failed liblane call: code (a lane_status), status ("LANE_EJSON"),
    message and the policy line when known."""

    def __init__(self, code, message, line=0):
        self.code, self.line = code, line
        self.status = _s(_lib.lane_status_name(code))
        self.message = message
        super().__init__("%s: %s" % (self.status, message))


def _raise(err):
    raise LaneError(err.code, _s(err.message), err.line)


# ---- programs, requests, runtimes --------------------------------------------

class Program:
    """A verified, immutable compiled policy; share it between threads."""

    def __init__(self, data, path=None):
        err = _Error()
        self._p = _lib.lane_load(data, len(data), ctypes.byref(err))
        if not self._p:
            _raise(err)
        self.path = path   # for explain()

    @classmethod
    def load(cls, path):
        with open(path, "rb") as f:
            return cls(f.read(), path=os.path.abspath(path))

    @classmethod
    def _of_view(cls, ptr):
        """A view's program: lives as long as the view holds it."""
        p = cls.__new__(cls)
        p._p, p.path, p._borrowed = ptr, None, True
        return p

    def __del__(self):
        if getattr(self, "_p", None) and not getattr(self, "_borrowed", False):
            _lib.lane_program_free(self._p)
            self._p = None

    @property
    def routes(self):
        return [_s(_lib.lane_route_name(self._p, i))
                for i in range(_lib.lane_route_count(self._p))]

    @property
    def models(self):
        return [_s(_lib.lane_model_name(self._p, i))
                for i in range(_lib.lane_model_count(self._p))]

    @property
    def fields(self):
        """{name: unit} of every request field, standard ones first."""
        return {_s(_lib.lane_field_name(self._p, i)): _s(_lib.lane_field_unit(self._p, i))
                for i in range(_lib.lane_field_count(self._p))}

    def model(self, name):
        """A model index by lane name ("openai.gpt_5_nano"), or LaneError."""
        try:
            return self.models.index(name)
        except ValueError:
            raise LaneError(EARG, "unknown model '%s'" % name) from None

    def model_info(self, m):
        return {"name": _s(_lib.lane_model_name(self._p, m)),
                "provider": _s(_lib.lane_model_provider(self._p, m)),
                "id": _s(_lib.lane_model_id(self._p, m))}

    def request(self, **fields):
        """A new request with these fields set (see Request.set)."""
        r = Request(self)
        for k, v in fields.items():
            r.set(k, v)
        return r

    def request_from_json(self, body, formats=OPENAI_CHAT | ANTHROPIC_MESSAGES, **fields):
        """A request filled from an OpenAI or Anthropic body (bytes, str or a
        dict), then the given fields. LaneError (LANE_EJSON) if unreadable."""
        return Request(self).from_json(body, formats).update(**fields)


class Request:
    """The fields of one request. Strings are kept alive by the request."""

    def __init__(self, prog):
        self.prog = prog
        self._r = _Request()
        self._keep = []
        _lib.lane_request_init(ctypes.byref(self._r), prog._p)

    def _field(self, name):
        f = _lib.lane_field(self.prog._p, name.encode())
        if f < 0:
            raise LaneError(EARG, "unknown request field '%s'" % name)
        return f

    def set(self, name, value):
        """Sets a field: str (or bytes) for strings, bool for flags, int for
        ints, uints and tokens, int or float for money in dollars, durations
        in ms and fractions 0..1. A value of another type, or an int out of
        the field's range, raises LaneError: nothing is converted silently
        (no "false" read as true, no 2**64 + 5 stored as 5)."""
        f = self._field(name)
        t = _lib.lane_field_type(self.prog._p, f)
        unit = _s(_lib.lane_field_unit(self.prog._p, f))
        r = ctypes.byref(self._r)

        def wrong(why):
            return LaneError(EARG, "field '%s' (%s) cannot take %r: %s" % (name, unit, value, why))
        if t == T_MAP:
            st = self._set_map(f, unit, value, wrong)
        elif t == T_LIST:
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise wrong("it wants a list of str")
            bs = [v.encode() for v in value]
            items = (_Value * max(1, len(bs)))()
            for i, b in enumerate(bs):
                items[i].s.p = ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p).value
                items[i].s.n = len(b)
            st = _lib.lane_set_list(r, f, items, len(bs))
        elif t == T_STRING:
            if isinstance(value, str):
                b = value.encode()
            elif isinstance(value, (bytes, bytearray)):
                b = bytes(value)
            else:
                raise wrong("it wants a str")
            self._keep.append(b)
            st = _lib.lane_set_str(r, f, b, len(b))
        elif t == T_BOOL:
            if not isinstance(value, bool):
                raise wrong("it wants True or False")
            st = _lib.lane_set_bool(r, f, 1 if value else 0)
        elif t in (T_INT, T_UINT):
            if not isinstance(value, int) or isinstance(value, bool):
                raise wrong("it wants an int")
            if t == T_INT and not -2**63 <= value < 2**63:
                raise wrong("out of range for an int (-2**63 .. 2**63 - 1)")
            if t == T_UINT and not 0 <= value < 2**64:
                raise wrong("out of range for a uint (0 .. 2**64 - 1)")
            st = (_lib.lane_set_int(r, f, value) if t == T_INT
                  else _lib.lane_set_uint(r, f, value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                st = _lib.lane_set_double(r, f, float(value))
            except OverflowError:
                raise wrong("too large for a double") from None
        else:
            raise wrong("it wants a number")
        if st != OK:
            raise LaneError(st, "field '%s' (%s) cannot take %r"
                            % (name, _s(_lib.lane_field_unit(self.prog._p, f)), value))
        return self

    def _set_map(self, f, unit, value, wrong):
        """A map field from a dict of str keys to values of the map's type
        (lane_set_map copies them into the request)."""
        if not isinstance(value, dict):
            raise wrong("it wants a dict")
        vt = unit[len("map(string, "):-1]
        entries = (_Entry * max(1, len(value)))()
        keep = []
        for i, (k, v) in enumerate(value.items()):
            if not isinstance(k, str):
                raise wrong("its keys are str")
            kb = k.encode()
            keep.append(kb)
            entries[i].key, entries[i].klen = kb, len(kb)
            if vt == "string":
                if not isinstance(v, str):
                    raise wrong("its values are str")
                vb = v.encode()
                keep.append(vb)
                entries[i].v.s.p = ctypes.cast(ctypes.c_char_p(vb), ctypes.c_void_p).value
                entries[i].v.s.n = len(vb)
            elif vt == "bool":
                if not isinstance(v, bool):
                    raise wrong("its values are True or False")
                entries[i].v.i = 1 if v else 0
            elif vt in ("int", "tokens", "uint"):
                lo, hi = (0, 2**64) if vt == "uint" else (-2**63, 2**63)
                if not isinstance(v, int) or isinstance(v, bool) or not lo <= v < hi:
                    raise wrong("its values are ints in range")
                if vt == "uint":
                    entries[i].v.u = v
                else:
                    entries[i].v.i = v
            else:
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise wrong("its values are numbers")
                entries[i].v.d = float(v)
        return _lib.lane_set_map(ctypes.byref(self._r), f, entries, len(value))

    def update(self, **fields):
        for k, v in fields.items():
            self.set(k, v)
        return self

    def from_json(self, body, formats=OPENAI_CHAT | ANTHROPIC_MESSAGES):
        """Adds the fields of a request body (lane_request_from_json)."""
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        err = _Error()
        st = _json_lib().lane_request_from_json(ctypes.byref(self._r), body, len(body),
                                                formats, ctypes.byref(err))
        if st != OK:
            _raise(err)
        return self

    def get(self, name):
        """A field's value, or None when unset."""
        f = self._field(name)
        if not self._r.set >> f & 1:
            return None
        v, t = self._r.v[f], _lib.lane_field_type(self.prog._p, f)
        if t == T_MAP:
            return self._get_map(f, v)
        if t == T_LIST:   # stored as a map of empty keys
            b = ctypes.string_at(v.s.p, v.s.n)
            out, at = [], 4
            for _ in range(struct.unpack_from("=I", b, 0)[0]):
                n = struct.unpack_from("=I", b, at + 4)[0]
                out.append(_s(b[at + 8:at + 8 + n]))
                at += 8 + n
            return out
        if t == T_STRING:
            return _s(ctypes.string_at(v.s.p, v.s.n)) if v.s.n else ""
        return {T_INT: v.i, T_UINT: v.u, T_DOUBLE: v.d, T_BOOL: bool(v.i)}[t]

    def _get_map(self, f, v):
        """A map field as a dict, read from its stored form (vm/sem.h)."""
        b = ctypes.string_at(v.s.p, v.s.n)
        vt = _s(_lib.lane_field_unit(self.prog._p, f))[len("map(string, "):-1]
        out, at = {}, 4
        for _ in range(struct.unpack_from("=I", b, 0)[0]):
            kn = struct.unpack_from("=I", b, at)[0]
            k = _s(b[at + 4:at + 4 + kn])
            at += 4 + kn
            if vt == "string":
                n = struct.unpack_from("=I", b, at)[0]
                out[k] = _s(b[at + 4:at + 4 + n])
                at += 4 + n
                continue
            fmt = {"uint": "=Q", "bool": "=q", "int": "=q", "tokens": "=q"}.get(vt, "=d")
            x = struct.unpack_from(fmt, b, at)[0]
            out[k] = bool(x) if vt == "bool" else x
            at += 8
        return out

    def fields(self):
        """{name: value} of the fields set: the flat JSON `lane eval` reads."""
        names = self.prog.fields
        return {k: self.get(k) for k in names if self.get(k) is not None}

    def cost(self, model):
        """Expected cost in dollars of this request on a model (name or index)."""
        m = self.prog.model(model) if isinstance(model, str) else model
        return _lib.lane_cost(self.prog._p, ctypes.byref(self._r), m)


class Decision:
    """What lane_decide chose: primary, fallbacks and shadows by lane name."""

    def __init__(self, prog, d):
        name = lambda m: _s(_lib.lane_model_name(prog._p, m))
        self.route = _s(_lib.lane_route_name(prog._p, d.route))
        self.rule = d.rule
        self.rule_name = _s(_lib.lane_rule_name(prog._p, d.route, d.rule))
        self.candidates = [name(d.candidates[i]) for i in range(d.ncandidates)]
        self.primary, self.fallbacks = self.candidates[0], self.candidates[1:]
        self.model = prog.model_info(d.candidates[0])   # provider and provider's id
        self.shadows = [name(d.shadows[i]) for i in range(d.nshadows)]
        self.cost, self.steps = d.cost, d.steps
        # the output tokens the costs counted, and from where: "request"
        # (max_output_tokens), "estimate" (the route's output_estimate) or
        # None (input only)
        self.output_tokens = d.output_tokens
        self.output_from = {1: "request", 2: "estimate"}.get(d.output_from)
        self.nerrors, self.error_line = d.nerrors, d.error_line
        self._d = d   # for Runtime.log_record

    def __repr__(self):
        return ("Decision(route=%r, rule=%d, primary=%r, fallbacks=%r, shadows=%r, cost=%.6g)"
                % (self.route, self.rule, self.primary, self.fallbacks, self.shadows,
                   self.cost))


class Runtime:
    """Live state of one program: latency, breakers, budgets. Thread-safe."""

    def __init__(self, prog):
        err = _Error()
        self.prog = prog   # the program must outlive the runtime
        self._rt = _lib.lane_runtime_new(prog._p, ctypes.byref(err))
        if not self._rt:
            _raise(err)

    def __del__(self):
        if getattr(self, "_rt", None):
            _lib.lane_runtime_free(self._rt)
            self._rt = None

    def swap(self, prog):
        """Makes prog the program this runtime serves (lane_runtime_swap),
        while other threads go on deciding: live state carries over by
        meaning. Returns what was kept and dropped, with the notes. prog
        belongs to the runtime afterwards: the Program object is emptied.
        Build requests from a view (acquire) after a swap."""
        rep, err = _StateReport(), _Error()
        if not getattr(prog, "_p", None) or getattr(prog, "_borrowed", False):
            raise LaneError(EARG, "swap takes a Program of your own, loaded and not swapped in "
                            "before")
        if _lib.lane_runtime_swap(self._rt, prog._p, ctypes.byref(rep), ctypes.byref(err)) != OK:
            _raise(err)
        prog._p = None
        keys = ("budgets_kept", "budgets_dropped", "budgets_new", "keys_kept", "models_kept",
                "models_dropped")
        out = {k: getattr(rep, k) for k in keys}
        out["notes"] = [n for n in rep.notes.decode("utf-8", "replace").split("\n") if n]
        return out

    def acquire(self):
        """A View: the program served now, pinned with this runtime's live
        state for as long as the view is held (a request's whole life);
        use it as a context manager, or call release()."""
        return View(self)

    @property
    def generation(self):
        """1 for the first program, one more at each swap."""
        return _lib.lane_runtime_generation(self._rt)

    def _route(self, route):
        i = _lib.lane_route(self.prog._p, route.encode())
        if i < 0:
            raise LaneError(EARG, "unknown route '%s'" % route)
        return i

    def _decide(self, route, req, trace):
        d = _Decision()
        st = _lib.lane_decide_traced(self._rt, self._route(route), ctypes.byref(req._r),
                                     ctypes.byref(d), trace)
        if st == ENOMATCH:
            raise LaneError(st, "no rule of route '%s' produced a model (filtered rule %d)"
                            % (route, d.filtered_rule))
        if st != OK:
            raise LaneError(st, "cannot decide route '%s'" % route)
        return Decision(self.prog, d)

    def decide(self, route, req):
        """The decision for req on the named route; LaneError on no match."""
        return self._decide(route, req, None)

    def log_record(self, decision, req, key=None, id=None):
        """The decision record of decision (made for req on this runtime) as
        one JSON line (lane_log_decision): the request fields, the decision
        and the live state it read, which `lane replay` decides again.
        Call it right after deciding, before charging. Fields declared
        sensitive are hashed under key (16 bytes), or "redacted"."""
        if key is not None and len(key) != 16:
            raise LaneError(EARG, "a log key is 16 bytes")
        args = (self._rt, decision._d.route, ctypes.byref(req._r), OK, ctypes.byref(decision._d),
                id.encode() if id else None, key)
        return _text(_lib.lane_log_decision, *args)

    def outcome_record(self, id, model, latency_ms, cost, status=200, attempts=1, fallbacks=0,
                       input_tokens=0, output_tokens=0, score=None, ts_ms=0, shadow=False):
        """What became of decision id, as one JSON line (lane_log_outcome):
        the model that answered (a lane name, or None), its latency, actual
        cost and usage, and an optional score (user feedback, an eval's
        grade), which `lane replay` reports per model. shadow: the record
        of a shadow's call (a copy of the request sent to compare a model),
        which replay does not join to the decision."""
        m = -1 if model is None else self.prog.model(model)
        o = _Outcome(id.encode(), ts_ms, m, attempts, fallbacks, status, latency_ms,
                     input_tokens, output_tokens, cost, score is not None,
                     0.0 if score is None else score, 1 if shadow else 0, 0 if shadow else 1,
                     None, 1 if shadow else 0)
        return _text(_lib.lane_log_outcome, self.prog._p, ctypes.byref(o))

    def trace(self, route, req, cap=4096):
        """(decision, events): what the decision tried, in order, from
        lane_decide_traced; each event a dict (kind, rule, model, ...)."""
        events = (_Event * cap)()
        t = _Trace(events, cap, 0, 0)
        d = self._decide(route, req, ctypes.byref(t))
        out = []
        for e in events[:t.n]:
            ev = {"kind": EVENT_KINDS.get(e.kind, e.kind), "rule": e.rule, "line": e.line}
            if e.kind == 2:
                ev["candidates"] = e.model
            elif e.kind in (4, 5, 6):
                ev["model"] = _s(_lib.lane_model_name(self.prog._p, e.model))
            if e.kind == 4:
                ev["passed"], ev["cost"] = bool(e.passed), e.cost
                if not e.passed:
                    ev["check"] = _s(_lib.lane_check_name(e.check))
            if e.kind == 7:
                ev["target"] = e.model
            out.append(ev)
        return d, out

    def explain(self, route, req, fmt="text", lane="lane", cap=4096):
        """Why this runtime decides req as it does. fmt="text": decided here,
        in this process, and explained by liblane from the VM's trace
        (lane_explain_text): every rule tried and, if it did not match, the
        part of its condition that was false with the values it saw; each
        model considered with its cost, kept or removed and why (the
        condition that removed it, or fits, healthy); then the decision. fmt="json": `lane eval
        --explain --format json` on the request and a snapshot of this
        runtime (lane is the command, $LANE if set)."""
        if fmt == "text":
            events = (_Event * cap)()
            t = _Trace(events, cap, 0, 0)
            d = _Decision()
            ri = self._route(route)
            st = _lib.lane_decide_traced(self._rt, ri, ctypes.byref(req._r), ctypes.byref(d),
                                         ctypes.byref(t))
            if st not in (OK, ENOMATCH):
                raise LaneError(st, "cannot decide route '%s'" % route)
            args = (self._rt, ri, ctypes.byref(req._r), st, ctypes.byref(d),
                    ctypes.byref(t), None)
            return _text(_lib.lane_explain_text, *args)   # the same trace: no second decision
        if not self.prog.path:
            raise LaneError(EARG, "explain needs a program loaded from a file")
        lane = os.environ.get("LANE", lane)
        with tempfile.TemporaryDirectory() as tmp:
            rq, st = os.path.join(tmp, "request.json"), os.path.join(tmp, "state.json")
            with open(rq, "w") as f:
                json.dump(req.fields(), f)
            with open(st, "w") as f:
                f.write(self.snapshot_text())
            p = subprocess.run([lane, "eval", self.prog.path, "--route", route, "--explain",
                                "--format", fmt, "--state", st, rq],
                               capture_output=True, text=True)
        if p.returncode == 2:
            raise LaneError(EARG, p.stderr.strip())
        return json.loads(p.stdout) if fmt == "json" else p.stdout

    def observe(self, model, latency_ms, status=CALL_OK):
        """Reports a call's outcome (model by name or index)."""
        m = self.prog.model(model) if isinstance(model, str) else model
        _lib.lane_observe(self._rt, m, float(latency_ms), status)

    def charge(self, req, dollars):
        """Adds actual spend to every budget keyed by a field set in req."""
        st = _lib.lane_charge(self._rt, ctypes.byref(req._r), float(dollars))
        if st != OK:
            raise LaneError(st, "cannot charge %r dollars" % dollars)

    def stats(self, model):
        m = self.prog.model(model) if isinstance(model, str) else model
        s = _LiveStats()
        if _lib.lane_model_stats(self._rt, m, ctypes.byref(s)) != OK:
            raise LaneError(EARG, "no model %r" % model)
        return {"p50": s.p50, "p95": s.p95, "error_rate": s.error_rate,
                "samples": s.samples, "state": BREAKER_STATES.get(s.state, s.state),
                "until_ms": s.until_ms}

    def spent(self, budget, key):
        """Dollars spent by one key (e.g. a tenant) in a budget's window."""
        b = _lib.lane_budget(self.prog._p, budget.encode())
        if b < 0:
            raise LaneError(EARG, "unknown budget '%s'" % budget)
        # The key's text as lane reads it: a bool is true/false, not True.
        k = ("true" if key else "false") if isinstance(key, bool) else str(key)
        k = k.encode()
        h = _lib.lane_budget_key_hash(self.prog._p, b, k, len(k))
        out = ctypes.c_double()
        if _lib.lane_budget_spent(self._rt, b, h, ctypes.byref(out)) != OK:
            raise LaneError(EARG, "cannot read budget '%s'" % budget)
        return out.value

    def snapshot_text(self):
        """lane_runtime_snapshot's JSON. The state may grow between the call
        that sizes the buffer and the one that fills it (other threads
        observe and charge): the text is taken only when it fitted."""
        cap = _lib.lane_runtime_snapshot(self._rt, None, 0) + 1
        while True:
            buf = ctypes.create_string_buffer(cap)
            n = _lib.lane_runtime_snapshot(self._rt, buf, cap)
            if n < cap:
                return buf.raw[:n].decode()
            cap = n + 1 + n // 4

    def snapshot(self):
        """Live state as a dict (lane_runtime_snapshot)."""
        return json.loads(self.snapshot_text())


class View(Runtime):
    """A program pinned in a runtime (lane_runtime_acquire): decides,
    observes and charges as its Runtime does, always with the program it
    pinned, whatever swaps happen; what it charges counts for the programs
    after it. .prog is that program (build requests from it). Release it
    (or leave the with block) when the request is done."""

    def __init__(self, rt):
        self._owner = rt          # the runtime outlives its views
        self._rt = _lib.lane_runtime_acquire(rt._rt)
        self.prog = Program._of_view(_lib.lane_runtime_program(self._rt))

    def release(self):
        if getattr(self, "_rt", None):
            _lib.lane_runtime_release(self._rt)
            self._rt = None

    __del__ = release

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
