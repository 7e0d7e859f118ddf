/*
 * vm.c -- requests, runtimes, decisions and the interpreter.
 *
 * A decision runs on the caller's stack: the operand stack, the candidate
 * list and the per-decision state are locals of vm_exec and lane_decide.
 * Nothing is allocated, no lock is taken, nothing is printed. The loader
 * has verified every index, jump and stack type (load.c), so the
 * interpreter checks only data: overflow, division by zero, ranges.
 *
 * Dispatch goes through vmfetch/vmdispatch/vmcase/vmbreak: computed goto
 * with GCC and Clang (labels as values), a switch elsewhere or with
 * -DLANE_VM_SWITCH.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sem.h"
#include "vm.h"

#if defined(__GNUC__) && !defined(LANE_VM_SWITCH) && !defined(LANE_VM_GOTO)
#define LANE_VM_GOTO 1
#endif

/* Per-decision state, on the stack of lane_decide_route. */
/* What the cost formula and `fits` read of a request, read once per
 * decision (vm_costq_init) instead of once per member. */
typedef struct vm_costq {
  int64_t in, out, cached;        /* clamped as cost_on says */
  int64_t total;                  /* in + out (fits), unless it overflowed */
  int     total_ok;               /* 0: in + out overflowed int64 */
  int     reasoning;              /* req.reasoning set and true */
  int     plain;                  /* no cached tokens, no reasoning: the
                                     formula is in * p_in + out * p_out */
  double  din, dout, dfresh, dcached;   /* as doubles: in, out, in - cached, cached */
  int64_t raw_in, raw_out;        /* unclamped, as sem_fits reads them */
  int     from;                   /* LANE_OUTPUT_*: where out came from */
} vm_costq;

/* A filter part's value for one capability class, kept for the rest of
 * the decision (member_filter). */
#define VM_MEMO 32
typedef struct vm_memo {
  uint32_t canon, key;            /* the part (vm_fspec.canon), caps & capmask */
  uint32_t steps;                 /* steps its run counted */
  uint8_t  pass;
  uint8_t  any;                   /* its run read no capability: the value
                                     holds for every class */
} vm_memo;

/* The request side of a filter part run as conjuncts (plan->cn), worked
 * out once per decision (pre_get): each test's value and steps, and what
 * a member passing needs. A member whose capabilities hold `need` passes
 * with spass steps, every member alike; any other takes conj_class's
 * walk over the kept values. */
#define VM_PRE 8
typedef struct vm_pre {
  uint32_t canon;                 /* the part (vm_fspec.canon) */
  uint32_t need;                  /* capabilities of the conjuncts whose test failed */
  uint32_t spass;                 /* steps of a member that passes */
  uint8_t  dead;                  /* a test-only conjunct failed: none passes */
  uint8_t  tv[VM_CONJ_MAX];       /* the tests' values */
  uint32_t ts[VM_CONJ_MAX];       /* their steps, string work included */
} vm_pre;

typedef struct vm_run {
  const bc_image     *im;         /* program image */
  vm_costq            q;          /* the request's cost inputs */
  const vm_fspec     *fspec;      /* the program's filter parts (spec.c) */
  const bc_insn      *xcode;      /* their copies, run with filter mode 3 */
  const bc_insn      *fcode;      /* the code with fused instructions, or NULL */
  const vm_plan      *plan;       /* selections as set walks, or NULL */
  const uint64_t     *okc, *oko;  /* the plan's fit rows for this request
                                     (NULL until a selection needs them) */
  int                 capread;    /* M_CAP ran since it was cleared */
  int                 hwok;       /* hw: 0 not read yet, 1 valid, -1 none */
  uint64_t            hw[VM_SET_WORDS]; /* closed breakers (health_words) */
  int                 nmemo;      /* parts' values known in this decision */
  vm_memo             memo[VM_MEMO];
  int                 npre;       /* conjunct parts' request sides known */
  vm_pre              pre[VM_PRE];
  vm_pre              pre_spare;  /* one more, when pre is full */
  lane_runtime       *rt;         /* live stats */
  uint64_t            now;        /* the clock, read once per decision */
  int                 nprobe;     /* breaker probes granted to this decision */
  int                 probe[LANE_MAX_CANDIDATES]; /* their models */
  int                 npending;   /* models past their cooldown seen healthy */
  int                 pending[16];/* their indexes: they need a probe if picked */
  int                 filtered;   /* first rule that matched without
                                     candidates (1-based), 0 none */
  lane_trace         *trace;      /* events, only when explaining */
  uint32_t            rule_pc;    /* tracing: pc of the current rule's RULE */
  const lane_request *r;          /* request */
  const bc_route     *route;      /* route being decided */
  int                 cur;        /* current rule, relative to the route */
  uint32_t            model;      /* current model, inside a filter */
  uint32_t            steps;      /* instructions executed */
  int                 nerrors;    /* runtime errors so far */
  int                 error_line; /* line of the first */
  int                 ncand;      /* candidates chosen */
  int                 cand[LANE_MAX_CANDIDATES];  /* model indexes */
  int                 nshadow;    /* shadows chosen */
  int                 shadow[LANE_MAX_SHADOWS];   /* model indexes */
  vmval               xval;       /* an explain region's value (XRET) */
  char               *sbuf;       /* the strings built (the caller's stack) */
  uint32_t            sused, scap;/* bytes of sbuf in use, and its size */
  int                 idepth;     /* ITERs running */
  struct { const char *k, *v; size_t kn, vn; int64_t i; } iter[BC_MAX_ITER]; /* their entries */
  const char         *fault;      /* explaining: the error raised */
  const int          *xhealthy;   /* explaining: models whose probe the decision */
  int                 nxhealthy;  /* took, healthy as it saw them */
} vm_run;

/* ---------------------------------------------------------------------
 * Status names and introspection
 * ------------------------------------------------------------------- */
const char *lane_status_name(int status) {
  static const char *const names[] = {
    "LANE_OK", "LANE_ENOMEM", "LANE_EFORMAT", "LANE_EVERSION",
    "LANE_ELIMIT", "LANE_EARG", "LANE_ENOMATCH", "LANE_EJSON",
  };
  if (status < 0 || status >= (int)(sizeof names / sizeof names[0])) return "LANE_E?";
  return names[status];
}

static const char *str(const lane_program *p, uint32_t i) { return p->im.str[i].p; }

int lane_route_count(const lane_program *p) { return p ? (int)p->im.nroutes : 0; }

const char *lane_route_name(const lane_program *p, int route) {
  if (!p || route < 0 || (uint32_t)route >= p->im.nroutes) return NULL;
  return str(p, p->im.routes[route].name);
}

int lane_route(const lane_program *p, const char *name) {
  if (!p || !name) return -1;
  for (uint32_t i = 0; i < p->im.nroutes; i++)
    if (strcmp(str(p, p->im.routes[i].name), name) == 0) return (int)i;
  return -1;
}

int lane_rule_count(const lane_program *p, int route) {
  if (!p || route < 0 || (uint32_t)route >= p->im.nroutes) return -1;
  return (int)p->im.routes[route].nrules;
}

const char *lane_rule_name(const lane_program *p, int route, int rule) {
  if (!p || route < 0 || (uint32_t)route >= p->im.nroutes) return NULL;
  if (rule < 1 || (uint32_t)rule > p->im.routes[route].nrules) return NULL;
  return str(p, p->im.rules[p->im.routes[route].first_rule + (uint32_t)rule - 1].name);
}

int lane_model_count(const lane_program *p) { return p ? (int)p->im.nmodels : 0; }

static const bc_model *model_at(const lane_program *p, int m) {
  if (!p || m < 0 || (uint32_t)m >= p->im.nmodels) return NULL;
  return &p->im.models[m];
}

const char *lane_model_name(const lane_program *p, int model) {
  const bc_model *m = model_at(p, model);
  return m ? str(p, m->name) : NULL;
}

const char *lane_model_provider(const lane_program *p, int model) {
  const bc_model *m = model_at(p, model);
  return m ? str(p, m->provider) : NULL;
}

const char *lane_model_id(const lane_program *p, int model) {
  const bc_model *m = model_at(p, model);
  return m ? str(p, m->id) : NULL;
}

uint64_t lane_program_max_steps(const lane_program *p) { return p ? p->max_steps : 0; }
uint64_t lane_program_checksum(const lane_program *p) { return p ? p->checksum : 0; }

/* ---------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------- */
int lane_field(const lane_program *p, const char *name) {
  if (!p || !name) return -1;
  for (uint32_t i = 0; i < p->im.nfields; i++)
    if (strcmp(str(p, p->im.fields[i].name), name) == 0) return (int)i;
  return -1;
}

int lane_field_count(const lane_program *p) { return p ? (int)p->im.nfields : 0; }

int lane_field_sensitive(const lane_program *p, int field) {
  if (!p || field < 0 || (uint32_t)field >= p->im.nfields) return 0;
  return (p->im.fields[field].flags & BC_FIELD_SENSITIVE) != 0;
}

const char *lane_field_name(const lane_program *p, int field) {
  if (!p || field < 0 || (uint32_t)field >= p->im.nfields) return NULL;
  return str(p, p->im.fields[field].name);
}

int lane_field_type(const lane_program *p, int field) {
  if (!p || field < 0 || (uint32_t)field >= p->im.nfields) return 0;
  return p->im.fields[field].type;
}

const char *lane_field_unit(const lane_program *p, int field) {
  if (!p || field < 0 || (uint32_t)field >= p->im.nfields) return NULL;
  if (p->im.fields[field].type == LANE_T_MAP) return bc_map_unit_name(p->im.fields[field].unit);
  if (p->im.fields[field].type == LANE_T_LIST) return "list(string)";
  return bc_unit_name(p->im.fields[field].unit);
}

void lane_request_init(lane_request *r, const lane_program *p) {
  if (!r) return;
  r->prog = p;
  r->set = 0;
  r->nv = p ? p->im.nfields : 0;
  r->room = LANE_REQUEST_TEXT;
  r->ntext = 0;
  r->compact = 0;
}

/* The header and the values of a compact request of p. */
static size_t request_head(const lane_program *p) {
  return offsetof(lane_request, v) + (size_t)p->im.nfields * sizeof(lane_value);
}

size_t lane_request_size(const lane_program *p, size_t text) {
  if (!p) return 0;
  size_t head = request_head(p);
  return text > SIZE_MAX - head ? 0 : head + text;
}

lane_request *lane_request_init_in(void *buf, size_t size, const lane_program *p,
                                   lane_error *err) {
  if (!p || !buf) {
    errf(err, LANE_EARG, "lane_request_init_in: no %s", p ? "buffer" : "program");
    return NULL;
  }
  if ((uintptr_t)buf % _Alignof(lane_value)) {
    errf(err, LANE_EARG, "lane_request_init_in: the buffer is not aligned for a lane_value "
         "(%zu bytes)", (size_t)_Alignof(lane_value));
    return NULL;
  }
  size_t head = request_head(p);
  if (size < head) {
    errf(err, LANE_EARG, "lane_request_init_in: %zu bytes, a request of this program takes "
         "at least %zu (lane_request_size)", size, head);
    return NULL;
  }
  lane_request *r = buf;
  r->prog = p;
  r->set = 0;
  r->nv = p->im.nfields;
  r->room = size - head > UINT32_MAX ? UINT32_MAX : (uint32_t)(size - head);
  r->ntext = 0;
  r->compact = 1;
  return r;
}

/* Where r's text room starts: a compact request's follows its values. */
static char *request_text(lane_request *r) {
  return r->compact ? (char *)r + offsetof(lane_request, v) + (size_t)r->nv * sizeof(lane_value)
                    : r->text;
}

char *lane_request_text(lane_request *r, size_t *left) {
  if (!r) return NULL;
  if (left) *left = r->ntext <= r->room ? r->room - r->ntext : 0;
  return request_text(r) + r->ntext;
}

int lane_request_text_used(lane_request *r, size_t n) {
  if (!r) return LANE_EARG;
  if (r->ntext > r->room || n > r->room - r->ntext) return LANE_ELIMIT;
  r->ntext += (uint32_t)n;
  return LANE_OK;
}

/* The type of field f of r's program, or 0 if r or f is bad. */
static int ftype(const lane_request *r, int f) {
  if (!r || !r->prog || f < 0 || (uint32_t)f >= r->prog->im.nfields) return 0;
  return r->prog->im.fields[f].type;
}

#define SET(r, f, member, val) \
  ((r)->v[f].member = (val), (r)->set |= (uint64_t)1 << (f), LANE_OK)

/* Request strings are bounded (LANE_MAX_STRING) where they enter, so the
 * loader's worst case can count the work done on them (vm/README.md, "Cost
 * model"). */
int lane_set_str(lane_request *r, int field, const char *s, size_t n) {
  if (ftype(r, field) != LANE_T_STRING || (!s && n)) return LANE_EARG;
  if (n > LANE_MAX_STRING) return LANE_ELIMIT;
  r->v[field].s.p = s ? s : "";
  r->v[field].s.n = n;
  r->set |= (uint64_t)1 << field;
  return LANE_OK;
}

/* Writes n (4 bytes) and then n bytes of p at o: a map's key or string
 * value as sem_map_next reads it. Returns the byte after. */
static char *put_counted(char *o, const char *p, size_t n) {
  uint32_t u = (uint32_t)n;
  memcpy(o, &u, 4);
  if (u) memcpy(o + 4, p, u);
  return o + 4 + u;
}

/* The room for a stored map or list of `need` bytes in r's text room,
 * its count written; NULL when it does not fit. */
static char *stored_start(lane_request *r, size_t need, size_t count) {
  size_t left;
  char *m = lane_request_text(r, &left);
  if (!m || need > left) return NULL;
  uint32_t u = (uint32_t)count;
  memcpy(m, &u, 4);
  return m;
}

/* Takes the `need` bytes at m as field f's stored map or list. */
static int stored_set(lane_request *r, int field, const char *m, size_t need) {
  lane_request_text_used(r, need);
  r->v[field].s.p = m;
  r->v[field].s.n = need;
  r->set |= (uint64_t)1 << field;
  return LANE_OK;
}

int lane_set_map(lane_request *r, int field, const lane_entry *e, size_t n) {
  if (ftype(r, field) != LANE_T_MAP || (!e && n)) return LANE_EARG;
  if (n > LANE_MAX_MAP_ENTRIES) return LANE_ELIMIT;
  int str = bc_unit_type(r->prog->im.fields[field].unit) == LANE_T_STRING;
  int flag = r->prog->im.fields[field].unit == BC_U_BOOL;
  size_t need = 4;
  for (size_t i = 0; i < n; i++) {
    if (!e[i].key && e[i].klen) return LANE_EARG;
    if (str && !e[i].v.s.p && e[i].v.s.n) return LANE_EARG;
    if (flag && e[i].v.i != 0 && e[i].v.i != 1) return LANE_EARG;
    if (e[i].klen > LANE_MAX_STRING || (str && e[i].v.s.n > LANE_MAX_STRING)) return LANE_ELIMIT;
    need += 4 + e[i].klen + (str ? 4 + e[i].v.s.n : 8);
    if (need > LANE_MAX_MAP) return LANE_ELIMIT;
    for (size_t j = 0; j < i; j++)   /* bounded: n < LANE_MAX_MAP / 12 */
      if (e[j].klen == e[i].klen && (!e[i].klen || !memcmp(e[j].key, e[i].key, e[i].klen)))
        return LANE_EARG;
  }
  char *m = stored_start(r, need, n);
  if (!m) return LANE_ELIMIT;
  char *o = m + 4;
  for (size_t i = 0; i < n; i++) {
    o = put_counted(o, e[i].key, e[i].klen);
    if (str) {
      o = put_counted(o, e[i].v.s.p, e[i].v.s.n);
    } else {
      memcpy(o, &e[i].v.u, 8);
      o += 8;
    }
  }
  return stored_set(r, field, m, need);
}

int lane_set_list(lane_request *r, int field, const lane_value *items, size_t n) {
  if (ftype(r, field) != LANE_T_LIST || (!items && n)) return LANE_EARG;
  if (n > LANE_MAX_MAP_ENTRIES) return LANE_ELIMIT;
  size_t need = 4;
  for (size_t i = 0; i < n; i++) {
    if (!items[i].s.p && items[i].s.n) return LANE_EARG;
    if (items[i].s.n > LANE_MAX_STRING) return LANE_ELIMIT;
    need += 8 + items[i].s.n;
    if (need > LANE_MAX_MAP) return LANE_ELIMIT;
  }
  char *m = stored_start(r, need, n);
  if (!m) return LANE_ELIMIT;
  char *o = m + 4;
  for (size_t i = 0; i < n; i++)   /* an empty key, then the string */
    o = put_counted(put_counted(o, NULL, 0), items[i].s.p, items[i].s.n);
  return stored_set(r, field, m, need);
}

int lane_set_int(lane_request *r, int field, int64_t v) {
  switch (ftype(r, field)) {
  case LANE_T_INT: return SET(r, field, i, v);
  case LANE_T_UINT: return v >= 0 ? SET(r, field, u, (uint64_t)v) : LANE_EARG;
  default: return LANE_EARG;
  }
}

int lane_set_uint(lane_request *r, int field, uint64_t v) {
  switch (ftype(r, field)) {
  case LANE_T_UINT: return SET(r, field, u, v);
  case LANE_T_INT: return v <= INT64_MAX ? SET(r, field, i, (int64_t)v) : LANE_EARG;
  default: return LANE_EARG;
  }
}

int lane_set_double(lane_request *r, int field, double v) {
  switch (ftype(r, field)) {
  case LANE_T_DOUBLE: return SET(r, field, d, v);
  case LANE_T_INT:
    if (v >= -9223372036854775808.0 && v < 9223372036854775808.0 &&
        (double)(int64_t)v == v)
      return SET(r, field, i, (int64_t)v);
    return LANE_EARG;
  case LANE_T_UINT:
    if (v >= 0 && v < 18446744073709551616.0 && (double)(uint64_t)v == v)
      return SET(r, field, u, (uint64_t)v);
    return LANE_EARG;
  default: return LANE_EARG;
  }
}

int lane_set_bool(lane_request *r, int field, int v) {
  if (ftype(r, field) != LANE_T_BOOL) return LANE_EARG;
  return SET(r, field, i, v != 0);
}

static int64_t req_int(const lane_request *r, int f) {
  return (r->set >> f & 1) ? r->v[f].i : 0;
}

/*
 * The expected cost of request r on model m, in dollars. With
 *   in = input_tokens, cached = cached_tokens (clamped to 0..in),
 *   out = max_output_tokens (negative counts read as 0),
 *   long = the model has a long-context tier and in > long_above,
 * the prices are
 *   p_in     = long && long_input > 0        ? long_input        : input
 *   p_cached = long && long_cached_input > 0 ? long_cached_input
 *            : cached_input > 0              ? cached_input      : p_in
 *   p_out    = reasoning && reasoning_output > 0 ? reasoning_output
 *            : long && long_output > 0       ? long_output       : output
 * and the cost is, in IEEE doubles in exactly this order,
 *   ((double)(in - cached) * p_in + (double)cached * p_cached)
 *     + (double)out * p_out
 * Without cached tokens or tiers this is input_tokens*input +
 * max_output_tokens*output to the last bit (adding 0.0 changes nothing).
 */
/* est: the route's output_estimate (0 none), the output counted when the
 * request has no max_output_tokens. It changes costs only: what fits a
 * model's context and max output is what the request asked for. */
static void vm_costq_init(vm_costq *q, const lane_request *r, int64_t est) {
  int64_t in = req_int(r, BC_F_INPUT_TOKENS), out = req_int(r, BC_F_MAX_OUTPUT_TOKENS);
  int64_t cached = req_int(r, BC_F_CACHED_TOKENS);
  q->raw_in = in;
  q->raw_out = out;
  q->total_ok = !__builtin_add_overflow(in, out, &q->total);
  q->from = LANE_OUTPUT_REQUEST;
  if (!(r->set >> BC_F_MAX_OUTPUT_TOKENS & 1)) {
    out = est;
    q->from = est > 0 ? LANE_OUTPUT_ESTIMATE : LANE_OUTPUT_NONE;
  }
  if (in < 0) in = 0;
  if (out < 0) out = 0;
  if (cached < 0) cached = 0;
  if (cached > in) cached = in;
  q->in = in;
  q->out = out;
  q->cached = cached;
  q->reasoning = req_int(r, BC_F_REASONING) != 0;
  q->plain = cached == 0 && !q->reasoning;
  q->din = (double)in;
  q->dout = (double)out;
  q->dfresh = (double)(in - cached);
  q->dcached = (double)cached;
}

/* The formula above on inputs read once. Without cached tokens and
 * reasoning, ((in - 0) * p_in + 0 * p_cached) + out * p_out is
 * in * p_in + out * p_out to the last bit (in * p_in >= +0, and x + +0
 * is x), so the plain case skips the cached price. */
static inline double cost_q(const bc_model *md, const vm_costq *q) {
  int lng = md->long_above > 0 && q->in > md->long_above;
  double p_in = lng && md->long_input > 0 ? md->long_input : md->input;
  if (q->plain)
    return q->din * p_in + q->dout * (lng && md->long_output > 0 ? md->long_output : md->output);
  double p_cached = lng && md->long_cached_input > 0 ? md->long_cached_input
                  : md->cached_input > 0 ? md->cached_input : p_in;
  double p_out = q->reasoning && md->reasoning_output > 0 ? md->reasoning_output
               : lng && md->long_output > 0 ? md->long_output : md->output;
  return (q->dfresh * p_in + q->dcached * p_cached) + q->dout * p_out;
}

static int64_t route_est(const bc_image *im, uint32_t route) {
  return route < im->nroute_out ? im->route_out[route] : 0;
}

static double cost_on(const bc_image *im, const lane_request *r, uint32_t m, int64_t est) {
  vm_costq q;
  vm_costq_init(&q, r, est);
  return cost_q(&im->models[m], &q);
}

double lane_cost(const lane_program *p, const lane_request *r, int model) {
  if (!model_at(p, model) || !r) return 0.0;
  return cost_on(&p->im, r, (uint32_t)model, 0);
}

double lane_route_cost(const lane_program *p, int route, const lane_request *r, int model) {
  if (!model_at(p, model) || !r || route < 0 || (uint32_t)route >= p->im.nroutes) return 0.0;
  return cost_on(&p->im, r, (uint32_t)model, route_est(&p->im, (uint32_t)route));
}

/* ---------------------------------------------------------------------
 * Helpers of the interpreter
 * ------------------------------------------------------------------- */
#if defined(__GNUC__)
#define VM_INLINE inline __attribute__((always_inline))
#else
#define VM_INLINE inline
#endif

static VM_INLINE vmval load_field(const vm_run *x, uint32_t f) {
  vmval v;
  int is_str = x->im->fields[f].type == LANE_T_STRING;
  if (x->r->set >> f & 1) {
    if (is_str) { v.v.s = x->r->v[f].s.p; v.n = x->r->v[f].s.n; }
    else { v.v.u = x->r->v[f].u; v.n = 0; }
  } else {
    if (is_str) v.v.s = "";
    else v.v.u = 0;
    v.n = 0;
  }
  return v;
}

/* M_FIELD a: the model property whose mfa column is a (BC_MPROPS). */
static vmval model_field(const bc_image *im, uint32_t m, int which) {
  const bc_model *md = &im->models[m];
  vmval v;
  v.n = 0;
#define MF_READ_D(x) v.v.d = (x)
#define MF_READ_I(x) v.v.i = (x)
#define MF_READ_S(x) (v.v.s = im->str[x].p, v.n = im->str[x].len)
#define MF_CASE(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  BC_MP_MF(op)(case mfa: MF_READ_##mt(md->member); break;)
  switch (which) {
  BC_MPROPS(MF_CASE)
  default: v.v.i = 0; break;   /* unreachable: the verifier checks a */
  }
#undef MF_CASE
  return v;
}

/* `fits` for the current model (sem_fits). */
/* sem_fits on the inputs read once: the same answer, overflow included. */
static inline int fits(const vm_run *x) {
  const bc_model *m = &x->im->models[x->model];
  if (m->context != 0 && (!x->q.total_ok || x->q.total > m->context)) return 0;
  return m->max_output == 0 || x->q.raw_out <= m->max_output;
}

/* Bytewise comparison (sem_bytes_cmp): UTF-8 code point order. */
static int scmp(const vmval *a, const vmval *b) {
  return sem_bytes_cmp(a->v.s, a->n, b->v.s, b->n);
}

/* Whether x is in list `list`; *steps gets the cost model's count of the
 * elements visited and the bytes compared (the decision's count: the
 * interpreter's own stays in a register). */
static int in_list(const bc_image *im, uint32_t list, const vmval *x, uint32_t *steps) {
  const bc_list *l = &im->lists[list];
  const uint32_t *e = im->listelems + l->first;
  uint64_t bytes = 0;
  uint32_t k = 0;
  int found = 0;
  switch (l->type) {
  case LANE_T_DOUBLE:
    for (; k < l->count && !found; k++) found = im->kdbl[e[k]] == x->v.d;
    break;
  case LANE_T_STRING:
    for (; k < l->count && !found; k++)
      if (im->str[e[k]].len == x->n) {
        bytes += x->n;
        found = sem_bytes_eq(im->str[e[k]].p, x->n, x->v.s, x->n);
      }
    break;
  default: /* int and uint compare bit patterns */
    for (; k < l->count && !found; k++) found = (uint64_t)im->kint[e[k]] == x->v.u;
    break;
  }
  *steps += (uint32_t)bc_len_steps(BC_OP_IN_LIST, k, bytes);
  return found;
}


static int vm_exec(vm_run *x, uint32_t pc, int filter);

/* The most bytes the next string built may take: what is left of the
 * scratch, at most LANE_MAX_STRING. */
static size_t vm_room(const vm_run *x) {
  size_t left = x->scap - x->sused;
  return left < LANE_MAX_STRING ? left : LANE_MAX_STRING;
}

/* Room for n bytes of a string built, or NULL: past LANE_MAX_STRING, or
 * past the scratch. */
static char *vm_scratch(vm_run *x, size_t n) {
  if (n > vm_room(x)) return NULL;
  char *p = x->sbuf + x->sused;
  x->sused += (uint32_t)n;
  return p;
}

/* ITER: runs iteration region b - 1 (vm_exec mode 4: 1 true, 0 false, -1
 * an error) once per entry of map field c, the entry at this depth for
 * MVAR; combines the runs as kind a says (BC_OPCODES). 1, 0, or -1 for
 * an error; ITER_N the count of trues, or -1. The loader bounds the depth
 * and the work. */
static int vm_iter(vm_run *x, const bc_insn *in) {
  const lane_request *r = x->r;
  int set = (int)(r->set >> in->c & 1), d = x->idepth, err = 0, res;
  int kind = in->op == BC_OP_ITER_N ? 3 : in->a;   /* 3: count, errors as exists_one */
  const char *m = set ? r->v[in->c].s.p : NULL;
  size_t n = set ? r->v[in->c].s.n : 0, at = 4;
  int str = bc_unit_type(x->im->fields[in->c].unit) == LANE_T_STRING;
  uint32_t count = sem_map_count(m, n), ones = 0;
  uint32_t start = x->im->filters[in->b - 1].start;
  uint32_t mark = x->sused;   /* the caller's strings built stay; each run's go */
  x->idepth = d + 1;
  for (uint32_t i = 0; i < count; i++) {
    sem_map_next(m, &at, str, &x->iter[d].k, &x->iter[d].kn, &x->iter[d].v, &x->iter[d].vn);
    x->iter[d].i = (int64_t)i;
    x->steps++;
    int v = vm_exec(x, start, 4);
    x->sused = mark;
    if (v < 0 && kind >= 2) { res = -1; goto done; }   /* exists_one, count: the error */
    if (v < 0) { err = 1; continue; }
    if (kind == 0 && !v) { res = 0; goto done; }     /* all: a false wins */
    if (kind == 1 && v) { res = 1; goto done; }      /* exists: a true wins */
    ones += (uint32_t)v;
  }
  res = err ? -1 : kind == 0 ? 1 : kind == 1 ? 0 : kind == 2 ? ones == 1 : (int)ones;
done:
  x->idepth = d;
  return res;
}

/* A sampled shadow's bucket 0..99 for this request: sticky per user and
 * independent between shadow models (the model's lane name seeds the
 * hash of req.user). */
static uint32_t shadow_bucket(const vm_run *x, uint32_t m, uint32_t *steps) {
  const bc_str *name = &x->im->str[x->im->models[m].name];
  uint64_t h = bc_fnv1a64(name->p, name->len, BC_FNV_OFFSET);
  size_t user = x->r->set >> BC_F_USER & 1 ? x->r->v[BC_F_USER].s.n : 0;
  if (user) h = bc_fnv1a64(x->r->v[BC_F_USER].s.p, user, h);
  *steps += (uint32_t)bc_len_steps(BC_OP_SHADOW, name->len, user);
  return (uint32_t)(bc_splitmix64(h) % 100);
}

static int contains(const int *v, int n, int m) {
  for (int i = 0; i < n; i++)
    if (v[i] == m) return 1;
  return 0;
}

/* Breaker health for this decision. A model past its cooldown passes a
 * filter but is only pending: it takes the probe when a selection picks
 * it (vm_cand), so checking it never spends the probe. */
static inline int healthy(vm_run *x, uint32_t m) {
  if (atomic_load_explicit(&x->rt->m[m]->state, memory_order_acquire) == LANE_BREAKER_CLOSED)
    return 1;   /* vm_health's first test, without the call */
  switch (vm_health(x->rt, m, x->now)) {
  case SEM_HEALTHY: return 1;
  case SEM_PROBE:
    if (contains(x->probe, x->nprobe, (int)m) || contains(x->pending, x->npending, (int)m))
      return 1;
    if (x->npending == 16) return 0;
    x->pending[x->npending++] = (int)m;
    return 1;
  default: return x->nxhealthy && contains(x->xhealthy, x->nxhealthy, (int)m);
  }
}

/* Whether a picked model may answer: a pending one must win its probe. */
static int take_pick(vm_run *x, int m) {
  if (!contains(x->pending, x->npending, m) || contains(x->probe, x->nprobe, m)) return 1;
  if (x->nprobe == LANE_MAX_CANDIDATES || !vm_claim_probe(x->rt, (uint32_t)m, x->now)) return 0;
  x->probe[x->nprobe++] = m;
  return 1;
}

/* Runs filter f with model m as the current model; 1 if it passes. */
static int run_filter(vm_run *x, uint32_t f, uint32_t m) {
  x->model = m;
  return vm_exec(x, x->im->filters[f].start, 1);
}

/* The tail of a filter (spec.c) for member m: natively for the forms
 * tail_kind knows, counting the 4 steps their instructions would, from
 * m's cost (COST_LT) or p95 (P95_LE) as the caller worked it out; else
 * interpreted from fs->tail. */
static VM_INLINE int tail_pass(vm_run *x, const vm_fspec *fs, uint32_t m, double cost, double p95) {
  switch (fs->tailk) {
  case VM_TAIL_COST_LT:
    x->steps += 4;
    return cost < x->im->kdbl[fs->targ];
  case VM_TAIL_P95_LE:
    x->steps += 4;
    return p95 <= load_field(x, fs->targ).v.d;
  default:
    x->model = m;
    return vm_exec(x, fs->tail, 1);
  }
}

static VM_INLINE int member_tail(vm_run *x, const vm_fspec *fs, uint32_t m) {
  double cost = fs->tailk == VM_TAIL_COST_LT ? cost_q(&x->im->models[m], &x->q) : 0;
  double p95 = fs->tailk == VM_TAIL_P95_LE ? vm_latency(x->rt, m, x->now, 1) : 0;
  return tail_pass(x, fs, m, cost, p95);
}

/* What the sequence a fused instruction f stands for tests (the value
 * left before its jump; spec.c's fuse_at): one definition for the
 * interpreter's BC_OP_X_* cases and for pre_get. k is the index of the
 * sequence's constant (its PUSH's); *steps gets the string work. */
#define FUSED_CMP(r_, l_, k_)                                             \
  switch (f->a & 7) {                                                     \
  case VM_FC_EQ: r_ = (l_) == (k_); break;                                \
  case VM_FC_NE: r_ = (l_) != (k_); break;                                \
  case VM_FC_LT: r_ = (l_) < (k_); break;                                 \
  case VM_FC_LE: r_ = (l_) <= (k_); break;                                \
  case VM_FC_GT: r_ = (l_) > (k_); break;                                 \
  default: r_ = (l_) >= (k_); break;                                      \
  }
/* Fused tests read their field as the op's type says (the verifier
 * checked that the LOAD before it has that type): unset reads as 0, 0.0,
 * false or the empty string, as load_field. */
static VM_INLINE int fused_s(const vm_run *x, const bc_insn *f, uint32_t k, uint32_t *steps) {
  const char *p = "";
  size_t n = 0;
  if (x->r->set >> f->c & 1) {
    p = x->r->v[f->c].s.p;
    n = x->r->v[f->c].s.n;
  }
  const bc_str *s = &x->im->str[k];
  *steps += (uint32_t)bc_len_steps(BC_OP_EQ_S, n, s->len);
  return sem_bytes_eq(p, n, s->p, s->len) ^ (f->a & 1);   /* VM_FC_NE: 1 */
}
static VM_INLINE int fused_i(const vm_run *x, const bc_insn *f, uint32_t k) {
  int64_t l = x->r->set >> f->c & 1 ? x->r->v[f->c].i : 0, c = x->im->kint[k];
  int r;
  FUSED_CMP(r, l, c)
  return r;
}
static VM_INLINE int fused_d(const vm_run *x, const bc_insn *f, uint32_t k) {
  double l = x->r->set >> f->c & 1 ? x->r->v[f->c].d : 0.0, c = x->im->kdbl[k];
  int r;
  FUSED_CMP(r, l, c)
  return r;
}
#undef FUSED_CMP
static VM_INLINE int fused_lj(const vm_run *x, const bc_insn *f) {
  int64_t v = x->r->set >> f->c & 1 ? x->r->v[f->c].i : 0;   /* a bool: 0 or 1 */
  return (int)(f->a & VM_FJ_NOT ? !v : v);
}
static VM_INLINE int fused_value(const vm_run *x, const bc_insn *f, uint32_t k, uint32_t *steps) {
  switch (vm_x_family(f->op)) {
  case BC_OP_X_SCMP: return fused_s(x, f, k, steps);
  case BC_OP_X_ICMP: return fused_i(x, f, k);
  case BC_OP_X_DCMP: return fused_d(x, f, k);
  default: return fused_lj(x, f);
  }
}

/* Filter f's part (WHOLE or PREFIX) for a member with capabilities caps,
 * natively from its conjuncts and e, their request side: its value, with
 * the steps the interpreter counts running it (a PREFIX's copy less its
 * PUSH_B 1 and FRET, as member_filter keeps them) added to *steps, and
 * *capread set if it read a capability. */
static int conj_class(const vm_plan *pl, uint32_t f, const vm_pre *e, uint32_t caps,
                      uint32_t *steps, int *capread) {
  const vm_conj *c = pl->conj + pl->cfirst[f];
  uint32_t n = pl->cn[f], st = 0;
  int v = 1;
  for (uint32_t k = 0; k < n; k++) {
    if (c[k].ntest) {
      st += e->ts[k];
      v = e->tv[k];
      if (c[k].cap == 0xff) {          /* a test: its JF_KEEP goes to the FRET */
        if (!v) { st++; break; }
        continue;
      }
    } else {
      v = 0;
    }
    if (!v) {                          /* M_CAP */
      st++;
      *capread = 1;
      v = caps >> c[k].cap & 1;
    }
    st++;                              /* its JF_KEEP, or the FRET it falls into */
    if (!c[k].jf) break;
    if (!v) { st++; break; }           /* the JF_KEEP went to the FRET */
  }
  *steps += st;
  return v;
}

/* The request side of filter f's conjunct part (canon), worked out at its
 * first use in the decision: every test is run once (tests only read the
 * request, so running one the interpreter would not reach changes
 * nothing but the steps, and conj_class counts those only when reached). */
static const vm_pre *pre_get(vm_run *x, uint32_t f, uint32_t canon) {
  for (int i = 0; i < x->npre; i++)
    if (x->pre[i].canon == canon) return &x->pre[i];
  vm_pre *e = x->npre < VM_PRE ? &x->pre[x->npre++] : &x->pre_spare;
  const vm_plan *pl = x->plan;
  const vm_conj *c = pl->conj + pl->cfirst[f];
  uint32_t n = pl->cn[f], need = 0, spass = 0;
  int dead = 0;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t st = c[k].ntest;
    int v = c[k].ntest ? fused_value(x, &c[k].test, c[k].k, &st) : 0;
    e->tv[k] = (uint8_t)v;
    e->ts[k] = st;
    /* conj_class's walk for a member with every capability, while no
     * test-only conjunct failed: the test, then the capability read for a
     * failed test, then its JF_KEEP (or the FRET it falls into) */
    if (c[k].ntest) spass += st;
    if (c[k].cap == 0xff) {
      dead |= !v;
      continue;
    }
    if (!v) {
      need |= 1u << c[k].cap;
      spass++;
    }
    spass++;
    if (!c[k].jf) break;
  }
  e->canon = canon;
  e->need = need;
  e->dead = (uint8_t)dead;
  e->spass = spass;
  return e;
}

/* conj_class for a member with capabilities caps, with the steps added to
 * x->steps: a member holding e->need passes as every such member does. */
static VM_INLINE int conj_pass(vm_run *x, uint32_t f, const vm_pre *e, uint32_t caps) {
  int unused = 0;
  if (!e->dead && (caps & e->need) == e->need) {
    x->steps += e->spass;
    return 1;
  }
  return conj_class(x->plan, f, e, caps, &x->steps, &unused);
}

/* Filter f for member m, as run_filter, but the part of f that reads only
 * the request and m's capabilities (spec.c) is not run per member: a part
 * of conjuncts from its request side (pre_get, once per decision) and m's
 * capabilities; another part once per capability class in a decision,
 * its value (and step count) kept. The tail, if any, runs per member.
 * The steps counted are run_filter's. */
static int member_filter(vm_run *x, uint32_t f, uint32_t m) {
  const vm_fspec *fs = &x->fspec[f];
  if (fs->kind == VM_SPEC_NONE || x->trace) return run_filter(x, f, m);
  if (fs->kind == VM_SPEC_TAIL) return member_tail(x, fs, m);
  int pass;
  if (x->plan && x->plan->cn[f]) {   /* conjuncts: from the part's request side */
    pass = conj_pass(x, f, pre_get(x, f, fs->canon), x->im->models[m].caps);
  } else {
    uint32_t key = x->im->models[m].caps & fs->capmask;
    const vm_memo *e = NULL;
    for (int i = 0; i < x->nmemo; i++)
      if (x->memo[i].canon == fs->canon && (x->memo[i].any || x->memo[i].key == key)) {
        e = &x->memo[i];
        break;
      }
    if (e) {
      x->steps += e->steps;
      pass = e->pass;
    } else {
      uint32_t s0 = x->steps;
      x->model = m;
      x->capread = 0;
      if (fs->kind == VM_SPEC_WHOLE) {
        pass = vm_exec(x, x->im->filters[f].start, 1);
      } else {
        pass = vm_exec(x, fs->xstart, 3);
        if (pass) x->steps -= 2;   /* the copy's PUSH_B 1 and FRET */
      }
      if (x->nmemo < VM_MEMO)
        x->memo[x->nmemo++] = (vm_memo){fs->canon, key, x->steps - s0, (uint8_t)pass,
                                        (uint8_t)!x->capread};
    }
  }
  if (!pass || fs->kind == VM_SPEC_WHOLE) return pass;
  return member_tail(x, fs, m);
}

typedef struct vm_pick { int m; double k1, k2; } vm_pick;


static void drop_answering_shadows(vm_run *x) {
  int n = 0;
  for (int i = 0; i < x->nshadow; i++)
    if (!contains(x->cand, x->ncand, x->shadow[i])) x->shadow[n++] = x->shadow[i];
  x->nshadow = n;
}

/* The target of switch c for this request: a binary search over cases
 * sorted by their bytes. *steps gets the probes and the bytes compared. */
static uint32_t switch_target(const vm_run *x, uint32_t c, uint32_t *steps) {
  const bc_image *im = x->im;
  const bc_switch *sw = &im->switches[c];
  vmval key = load_field(x, sw->field);
  uint32_t lo = 0, hi = sw->count, probes = 0, t = sw->otherwise;
  uint64_t bytes = 0;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    const bc_str *s = &im->str[im->cases[sw->first + mid].str];
    int cmp = sem_bytes_cmp(s->p, s->len, key.v.s, key.n);
    probes++;
    bytes += s->len < key.n ? s->len : key.n;
    if (!cmp) { t = im->cases[sw->first + mid].target; break; }
    if (cmp < 0) lo = mid + 1;
    else hi = mid;
  }
  *steps += (uint32_t)bc_len_steps(BC_OP_SWITCH, probes, bytes);
  return t;
}

/* The bytes BUDGET c hashes for its key: a string key's length. */
static size_t budget_key_bytes(const vm_run *x, uint32_t c) {
  uint32_t f = x->im->budgets[c].key_field;
  if (f == BC_NONE || x->im->fields[f].type != LANE_T_STRING || !(x->r->set >> f & 1)) return 0;
  return x->r->v[f].s.n;
}

/* Records an event when the caller asked for a trace. */
/* Tracing runs only for explanations: kept out of the decision's hot path
 * (cold, never inlined into the interpreter). */
__attribute__((cold, noinline))
static void trace_ev(vm_run *x, int kind, int model, int passed, int line, double cost,
                     int check) {
  lane_trace *t = x->trace;
  if (t->n >= t->cap) { t->truncated = 1; return; }
  lane_event e = {kind, x->cur + 1, model, passed, line, cost, check};
  t->events[t->n++] = e;
}
#define trace(x, ...) trace_ev((x), __VA_ARGS__, 0)
#define TRACE(x, ...) do { if ((x)->trace) trace((x), __VA_ARGS__); } while (0)

static int picked(const vm_pick *b, int n, int m) {
  for (int i = 0; i < n; i++)
    if (b[i].m == m) return 1;
  return 0;
}

/* The rank keys of member m in order ord, as vm_cand computes them. */
static void rank_keys(const vm_run *x, unsigned ord, int m, double cost, double *k1, double *k2) {
  *k1 = *k2 = 0;
  switch (ord) {
  case BC_ORD_CHEAPEST: *k1 = cost; break;
  case BC_ORD_FASTEST: {
    double p95 = vm_latency(x->rt, (uint32_t)m, x->now, 1);
    *k1 = p95 > 0 ? p95 : INFINITY;
    *k2 = cost;
    break;
  }
  case BC_ORD_BEST: *k1 = -x->im->models[m].quality; *k2 = cost; break;
  default: break;
  }
}

/* When tracing: puts the member events of one selection, from event t0
 * on, in the order the selection ranks them (kept members best first, then
 * removed ones in pool order), so that an explanation reads top down. A
 * stable insertion sort: it runs only for a trace, never on the decision
 * path without one. */
__attribute__((cold, noinline))
static void rank_trace(const vm_run *x, int t0, unsigned ord) {
  lane_trace *t = x->trace;
  if (ord == BC_ORD_LISTED) return;
  for (int i = t0; i < t->n; i++)
    if (t->events[i].kind != LANE_EV_MEMBER) return;   /* not one selection's */
  for (int i = t0 + 1; i < t->n; i++) {
    lane_event e = t->events[i];
    double a1, a2;
    rank_keys(x, ord, e.model, e.cost, &a1, &a2);
    int j = i;
    while (j > t0) {
      const lane_event *p = &t->events[j - 1];
      double b1, b2;
      rank_keys(x, ord, p->model, p->cost, &b1, &b2);
      int before = e.passed && (!p->passed || a1 < b1 || (a1 == b1 && a2 < b2));
      if (!before) break;
      t->events[j] = t->events[j - 1];
      j--;
    }
    t->events[j] = e;
  }
}

/* When tracing: the place of CAND `in` among its rule's CAND instructions
 * in code order, from 0: the order the emitter writes the rule's targets
 * in (split arms included), which explain walks the same way. */
__attribute__((cold, noinline))
static int cand_place(const vm_run *x, uint32_t at) {
  int n = 0;
  for (uint32_t pc = x->rule_pc + 1; pc < at; pc++) n += x->im->code[pc].op == BC_OP_CAND;
  return n;
}


/* ---------------------------------------------------------------------
 * Selections as set walks
 *
 * With a plan (spec.c) and no trace, a CAND visits only the members of
 * its pool whose model fits the request, read off two rows of the plan's
 * fit tables found once per decision, instead of testing every member.
 * A pool listed in model order is walked by the set bits of its set
 * (ctz); any other pool by its member list, a bit test per member, so
 * both meet members in pool order and ties break as vm_cand's do. Each
 * member met then takes vm_cand's steps exactly: health, its filter
 * (member_filter, steps counted alike), its keys, the top-k insertion
 * with an early reject. What a decision returns, its steps and probes
 * included, is vm_cand's (t_spec and fuzz_decide compare them).
 * ------------------------------------------------------------------- */

/* The first of at[0..n) at least v; n if none. */
static inline uint32_t first_ge(const int64_t *at, uint32_t n, int64_t v) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) >> 1;
    if (at[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* `fits` as two rows: fits(m) is bit m of both (sem_fits: context 0 or
 * in + out <= context without overflow, and max_output 0 or out <=
 * max_output). */
static void fit_rows_for(vm_run *x) {
  const vm_plan *pl = x->plan;
  uint32_t kc = x->q.total_ok ? first_ge(pl->ctx.at, pl->ctx.n, x->q.total) : pl->ctx.n;
  x->okc = pl->ctx.ok + (size_t)kc * pl->words;
  x->oko = pl->out.ok + (size_t)first_ge(pl->out.at, pl->out.n, x->q.raw_out) * pl->words;
}

/* The view's breakers as a model set into hw (bit m: closed), or 0 when
 * there is none to trust for this decision (then each member's breaker
 * is read, as before). The set is rebuilt by the first decision that finds
 * the hub's breaker count moved since it was built, one at a time: a
 * scan of the view's models, once per breaker change. Readers copy it
 * between two reads of hgen (a seqlock), so a set being rebuilt is never
 * used. A closed bit skips the member's state read; any other model still
 * goes through healthy(), its probe rule included. */
static VM_INLINE int health_words(vm_run *x, uint64_t *hw) {
  lane_runtime *rt = x->rt;
  uint32_t w = x->plan->words;
  uint64_t want = vm_breaker_count(rt) + 1;
  if (atomic_load_explicit(&rt->hgen, memory_order_acquire) == want) {
    /* acquire loads: the stamp's second read cannot move before them, and
     * a word a rebuild stored (release) brings its stamp 0 with it */
    for (uint32_t k = 0; k < w; k++) hw[k] = atomic_load_explicit(&rt->hwords[k], memory_order_acquire);
    return atomic_load_explicit(&rt->hgen, memory_order_relaxed) == want;
  }
  unsigned idle = 0;
  if (!atomic_compare_exchange_strong_explicit(&rt->hbusy, &idle, 1, memory_order_acquire,
                                               memory_order_relaxed))
    return 0;   /* another decision is rebuilding it */
  atomic_store_explicit(&rt->hgen, 0, memory_order_relaxed);   /* before the words (release) */
  want = vm_breaker_count(rt) + 1;   /* the scan below sees every change counted */
  memset(hw, 0, w * sizeof *hw);
  for (uint32_t m = 0; m < x->im->nmodels; m++)
    if (atomic_load_explicit(&rt->m[m]->state, memory_order_acquire) == LANE_BREAKER_CLOSED)
      hw[m >> 6] |= 1ull << (m & 63);
  for (uint32_t k = 0; k < w; k++) atomic_store_explicit(&rt->hwords[k], hw[k], memory_order_release);
  atomic_store_explicit(&rt->hgen, want, memory_order_release);
  atomic_store_explicit(&rt->hbusy, 0, memory_order_release);
  return 1;
}

typedef struct vm_sel {
  const bc_insn  *in;
  const vm_fspec *fs;           /* the filter's parts, or NULL */
  const vm_memo  *uni;          /* its prefix's value for every class, once
                                   known (member_filter's memo) */
  const vm_pre   *pre;          /* its part's request side, for a part of
                                   conjuncts; then uni is not used */
  vm_model *const *mm;          /* the runtime's model states */
  const uint64_t *hw;           /* closed breakers (health_words), or NULL */
  const vm_price *price;        /* the plan's prices */
  int             need, nb;
  vm_pick         buf[LANE_MAX_CANDIDATES];
} vm_sel;

#define VM_BETTER(a, b) ((a).k1 < (b).k1 || ((a).k1 == (b).k1 && (a).k2 < (b).k2))

/* The memo entry of fs's prefix that holds for every class, or NULL. */
static const vm_memo *memo_any(const vm_run *x, const vm_fspec *fs) {
  if (fs->kind != VM_SPEC_WHOLE && fs->kind != VM_SPEC_PREFIX) return NULL;
  for (int i = 0; i < x->nmemo; i++)
    if (x->memo[i].canon == fs->canon && x->memo[i].any) return &x->memo[i];
  return NULL;
}

/* cost_q for a request without cached tokens or reasoning, from the
 * plan's prices: the same operations on the same values. */
static VM_INLINE double cost_plain(const vm_price *pr, const vm_costq *q) {
  return q->in > pr->la ? q->din * pr->lin + q->dout * pr->lout : q->din * pr->in + q->dout * pr->out;
}

/* Member m (fit, not taken) met in pool order: 1 if it went into the
 * picks. chk: its pool marks it for the filter. The cost (and for
 * fastest() the p95) is worked out once, for the filter's native tail and
 * for the keys alike. Once a run of the filter's prefix showed it reads
 * no capability, its value and steps stand for every member (s->uni). */
/* Set bits of v, in a few instructions on any x86-64 (a build without
 * -mpopcnt makes __builtin_popcountll a call). */
static VM_INLINE uint32_t popcount64(uint64_t v) {
  v = v - (v >> 1 & 0x5555555555555555ull);
  v = (v & 0x3333333333333333ull) + (v >> 2 & 0x3333333333333333ull);
  v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return (uint32_t)((v * 0x0101010101010101ull) >> 56);
}

/* Puts pk into the picks if it beats the last of them: only a strictly
 * better pick moves ahead, so ties keep the order members were met in;
 * 1 if it went in. two: order by (k1, k2), else by k1 alone (cheapest()
 * met in pool order: every k2 is 0). */
static VM_INLINE int sel_put(vm_sel *s, int two, vm_pick pk) {
#define SEL_BETTER(a, b) (two ? VM_BETTER(a, b) : (a).k1 < (b).k1)
  int nb = s->nb, pos;
  if (nb == s->need && !SEL_BETTER(pk, s->buf[nb - 1])) return 0;
  pos = nb < s->need ? s->nb++ : nb - 1;
  for (; pos > 0 && SEL_BETTER(pk, s->buf[pos - 1]); pos--) s->buf[pos] = s->buf[pos - 1];
#undef SEL_BETTER
  s->buf[pos] = pk;
  return 1;
}

static VM_INLINE int sel_offer(vm_run *x, vm_sel *s, unsigned ord, int plain, int m, int chk,
                               int closed) {
  const bc_insn *in = s->in;
  const bc_model *md = &x->im->models[m];
  vm_pick pk = { m, 0, 0 };
  double p95 = 0;
  /* closed: the decision's set of closed breakers says so (health_words);
   * else healthy()'s first test from the walk's copy of the state pointers */
  if ((in->a & BC_CAND_HEALTHY) && !closed &&
      atomic_load_explicit(&s->mm[m]->state, memory_order_acquire) != LANE_BREAKER_CLOSED &&
      !healthy(x, (uint32_t)m))
    return 0;
  double cost = plain ? cost_plain(&s->price[m], &x->q) : cost_q(md, &x->q);
  if (ord == BC_ORD_FASTEST) p95 = vm_latency(x->rt, (uint32_t)m, x->now, 1);
  if (chk && s->pre) {
    const vm_fspec *fs = s->fs;
    if (!conj_pass(x, in->b - 1u, s->pre, md->caps)) return 0;
    if (fs->kind == VM_SPEC_PREFIX) {
      double l = ord == BC_ORD_FASTEST || fs->tailk != VM_TAIL_P95_LE
               ? p95 : vm_latency(x->rt, (uint32_t)m, x->now, 1);
      if (!tail_pass(x, fs, (uint32_t)m, cost, l)) return 0;
    }
  } else if (chk && s->fs) {
    const vm_fspec *fs = s->fs;
    const vm_memo *u = s->uni;
    if (fs->kind == VM_SPEC_NONE || (!u && fs->kind != VM_SPEC_TAIL)) {
      int pass = member_filter(x, in->b - 1u, (uint32_t)m);
      s->uni = memo_any(x, fs);
      if (!pass) return 0;
    } else {
      if (u) {
        x->steps += u->steps;
        if (!u->pass) return 0;
      }
      double l = ord == BC_ORD_FASTEST || fs->tailk != VM_TAIL_P95_LE
               ? p95 : vm_latency(x->rt, (uint32_t)m, x->now, 1);
      if (fs->kind != VM_SPEC_WHOLE && !tail_pass(x, fs, (uint32_t)m, cost, l)) return 0;
    }
  }
  switch (ord) {
  case BC_ORD_CHEAPEST: pk.k1 = cost; break;
  case BC_ORD_FASTEST: pk.k1 = p95 > 0 ? p95 : INFINITY; pk.k2 = cost; break;
  default: pk.k1 = -md->quality; pk.k2 = cost; break;   /* BEST */
  }
  return sel_put(s, ord != BC_ORD_CHEAPEST, pk);
}

/* What sel_bulk and sel_pruned take from a selection's filter: a native
 * tail (COST_LT or P95_LE, with its limit) or none, and the steps a
 * member that passes the filter counts (the part's, and the tail's 4). */
typedef struct vm_bulkf {
  int      tail, tk;
  double   lim;
  uint32_t per, f;
} vm_bulkf;

static VM_INLINE vm_bulkf bulk_filter(vm_run *x, const vm_sel *s) {
  const vm_fspec *fs = s->fs;
  vm_bulkf b;
  b.f = s->in->b - 1u;
  b.tail = fs && fs->kind != VM_SPEC_WHOLE;
  b.tk = b.tail ? fs->tailk : 0;
  b.lim = b.tk == VM_TAIL_COST_LT ? x->im->kdbl[fs->targ]
        : b.tk == VM_TAIL_P95_LE ? load_field(x, fs->targ).v.d : 0;
  b.per = (s->pre ? s->pre->spass : 0) + (b.tail ? 4u : 0u);   /* tail_pass counts 4 */
  return b;
}

/* The native tail for a member with this cost and p95. */
static VM_INLINE int bulk_tail(const vm_bulkf *b, double cost, double p95) {
  return b->tk == VM_TAIL_COST_LT ? cost < b->lim : p95 <= b->lim;
}

/* Counts the filter steps of met, the members of word k the filter
 * checks and reaches: those whose capabilities hold the part's need (an
 * AND of the plan's capability sets) pass with b->per each, a popcount;
 * the others count conj_class's. Returns those that fail. */
static VM_INLINE uint64_t bulk_count(vm_run *x, const vm_sel *s, const vm_bulkf *b, uint32_t k,
                                     uint64_t met, uint32_t *steps) {
  const vm_plan *pl = x->plan;
  const vm_pre *e = s->pre;
  uint64_t pass = ~0ull;
  int unused = 0;
  if (e) {
    if (e->dead) pass = 0;
    else
      for (uint32_t need = e->need; need; need &= need - 1)
        pass &= pl->caps[(size_t)__builtin_ctz(need) * pl->words + k];
  }
  *steps += b->per * popcount64(met & pass);
  for (uint64_t fail = met & ~pass; fail; fail &= fail - 1) {
    int m = (int)(k * 64 + (uint32_t)__builtin_ctzll(fail));
    conj_class(pl, b->f, e, x->im->models[m].caps, steps, &unused);
  }
  return met & ~pass;
}

/* cheapest() and fastest() over a pool listed in model order, with the
 * decision's closed breakers known and a filter that is none, a part of
 * conjuncts (pre_get) with or without a native tail, or a native tail:
 * sel_walk's loop with the filter's work taken out of it (bulk_count for
 * the closed members the filter checks); the walk meets the rest in
 * order, a member whose breaker is not closed through sel_offer. Steps,
 * picks and their order are sel_walk's. */
static VM_INLINE void sel_bulk(vm_run *x, vm_sel *s, unsigned ord, int plain, const uint64_t *set,
                               const uint64_t *chk, const uint64_t *taken, const uint64_t *okc,
                               const uint64_t *oko) {
  vm_bulkf bf = bulk_filter(x, s);
  uint32_t steps = 0;
  int healthy_flag = (s->in->a & BC_CAND_HEALTHY) != 0;
  const vm_price *price = s->price;
  for (uint32_t k = 0; k < x->plan->words; k++) {
    uint64_t bits = set[k] & ~taken[k], ck = s->fs ? chk[k] : 0;
    uint64_t closed = healthy_flag ? s->hw[k] : ~0ull;
    if (okc) bits &= okc[k] & oko[k];
    uint64_t fail = bulk_count(x, s, &bf, k, bits & closed & ck, &steps);
    for (uint64_t walk = bits & ~fail; walk; walk &= walk - 1) {
      int b = __builtin_ctzll(walk), m = (int)(k * 64 + (uint32_t)b);
      if (!(closed >> b & 1)) {
        sel_offer(x, s, ord, plain, m, (int)(ck >> b & 1), 0);
        continue;
      }
      double cost = plain ? cost_plain(&price[m], &x->q) : cost_q(&x->im->models[m], &x->q);
      double p95 = ord == BC_ORD_FASTEST || (bf.tk == VM_TAIL_P95_LE && (ck >> b & 1))
                 ? vm_latency(x->rt, (uint32_t)m, x->now, 1) : 0;
      if (bf.tail && (ck >> b & 1) && !bulk_tail(&bf, cost, p95)) continue;
      vm_pick pk = { m, cost, 0 };
      if (ord == BC_ORD_FASTEST) {
        pk.k1 = p95 > 0 ? p95 : INFINITY;
        pk.k2 = cost;
      }
      sel_put(s, ord != BC_ORD_CHEAPEST, pk);
    }
  }
  x->steps += steps;
}

/* cheapest() for a plain request over a pool listed in model order, in
 * the cases sel_bulk takes, with a walk that stops early. Every member's
 * filter steps and breaker checks are what sel_bulk's are, counted first
 * in pool order (a breaker not closed is checked there, as sel_offer
 * would, probes and all); the members left that may answer are then met
 * by their lowest input price (or output price, when the request asks
 * for more output than it sends), and the walk stops at the first whose
 * price times the request's tokens exceeds the third pick's cost: every
 * cost is at least that product (prices are >= 0, rounding is monotone),
 * so no later member can enter. Ties go to the lower model index (the
 * second key), as the pool-order walk breaks them, so the picks and their
 * order are the same. */
static VM_INLINE void sel_pruned(vm_run *x, vm_sel *s, const uint64_t *set, const uint64_t *chk,
                                 const uint64_t *taken, const uint64_t *okc,
                                 const uint64_t *oko) {
  const vm_plan *pl = x->plan;
  vm_bulkf bf = bulk_filter(x, s);
  uint32_t steps = 0, c = s->in->c;
  int healthy_flag = (s->in->a & BC_CAND_HEALTHY) != 0;
  uint64_t live[VM_SET_WORDS], cks[VM_SET_WORDS];
  for (uint32_t k = 0; k < pl->words; k++) {
    uint64_t bits = set[k] & ~taken[k], ck = s->fs ? chk[k] : 0;
    uint64_t closed = healthy_flag ? s->hw[k] : ~0ull;
    if (okc) bits &= okc[k] & oko[k];
    for (uint64_t open = bits & ~closed; open; open &= open - 1) {   /* sel_offer's check */
      int m = (int)(k * 64 + (uint32_t)__builtin_ctzll(open));
      if (atomic_load_explicit(&s->mm[m]->state, memory_order_acquire) != LANE_BREAKER_CLOSED &&
          !healthy(x, (uint32_t)m))
        bits &= ~(1ull << (m & 63));
    }
    live[k] = bits & ~bulk_count(x, s, &bf, k, bits & ck, &steps);
    cks[k] = ck;
  }
  x->steps += steps;
  const bc_pool *pool = &x->im->pools[c];
  int by_out = x->q.dout > x->q.din;
  const uint32_t *ord = pl->ord + pl->ordfirst[c] + (by_out ? pool->count : 0);
  const vm_costq *q = &x->q;
  double dt = by_out ? q->dout : q->din;
  for (uint32_t i = 0; i < pool->count; i++) {
    uint32_t m = ord[i], wd = m >> 6;
    uint64_t bit = 1ull << (m & 63);
    if (!(live[wd] & bit)) continue;
    const vm_price *pr = &s->price[m];
    if (s->nb == s->need && dt * vm_price_floor(pr, by_out) > s->buf[s->nb - 1].k1) break;
    double cost = cost_plain(pr, q);
    if (bf.tail && (cks[wd] & bit) &&
        !bulk_tail(&bf, cost, bf.tk == VM_TAIL_P95_LE ? vm_latency(x->rt, m, x->now, 1) : 0))
      continue;
    sel_put(s, 1, (vm_pick){ (int)m, cost, (double)m });   /* (cost, model) */
  }
}

/* The walk, for one order (a constant where it is inlined, so each order
 * gets its own loop). */
static VM_INLINE void sel_walk(vm_run *x, const bc_insn *in, int need, unsigned ord, int plain) {
  const bc_image *im = x->im;
  const vm_plan *pl = x->plan;
  uint32_t w = pl->words, c = in->c;
  const uint64_t *set = pl->pool + (size_t)c * w, *chk = pl->check + (size_t)c * w;
  uint64_t taken[VM_SET_WORDS];
  vm_sel s;
  s.in = in;
  s.fs = in->b ? &x->fspec[in->b - 1] : NULL;
  s.pre = NULL;
  s.uni = NULL;
  if (s.fs && (s.fs->kind == VM_SPEC_WHOLE || s.fs->kind == VM_SPEC_PREFIX) && pl->cn[in->b - 1])
    s.pre = pre_get(x, in->b - 1, s.fs->canon);
  else if (s.fs)
    s.uni = memo_any(x, s.fs);
  s.mm = x->rt->m;
  s.price = pl->price;
  s.hw = NULL;
  if (in->a & BC_CAND_HEALTHY) {
    if (!x->hwok) x->hwok = health_words(x, x->hw) ? 1 : -1;
    if (x->hwok > 0) s.hw = x->hw;
  }
  s.need = need;
  s.nb = 0;
  if ((in->a & BC_CAND_FITS) && !x->okc) fit_rows_for(x);
  const uint64_t *okc = in->a & BC_CAND_FITS ? x->okc : NULL, *oko = x->oko;
  memset(taken, 0, w * sizeof taken[0]);
  for (int i = 0; i < x->ncand; i++) taken[x->cand[i] >> 6] |= 1ull << (x->cand[i] & 63);
  const vm_fspec *fs = s.fs;
  if (ord != BC_ORD_BEST && pl->ascending[c] && (s.hw || !(in->a & BC_CAND_HEALTHY)) &&
      (!fs || s.pre || fs->kind == VM_SPEC_TAIL) &&
      (!fs || fs->kind == VM_SPEC_WHOLE || fs->tailk == VM_TAIL_COST_LT ||
       fs->tailk == VM_TAIL_P95_LE)) {
    if (ord == BC_ORD_CHEAPEST && plain) sel_pruned(x, &s, set, chk, taken, okc, oko);
    else sel_bulk(x, &s, ord, plain, set, chk, taken, okc, oko);
  } else if (pl->ascending[c]) {
    for (uint32_t k = 0; k < w; k++) {
      uint64_t bits = set[k] & ~taken[k], closed = s.hw ? s.hw[k] : 0;
      if (okc) bits &= okc[k] & oko[k];
      while (bits) {
        int b = __builtin_ctzll(bits);
        bits &= bits - 1;
        int m = (int)(k * 64 + (uint32_t)b);
        if (ord == BC_ORD_BEST && s.nb == need && -im->models[m].quality > s.buf[s.nb - 1].k1)
          continue;
        sel_offer(x, &s, ord, plain, m, (int)(chk[k] >> b & 1), (int)(closed >> b & 1));
      }
    }
  } else {
    const bc_pool *pool = &im->pools[c];
    const uint32_t *mem = im->members + pool->first;
    for (uint32_t k = 0; k < pool->count; k++) {
      int m = (int)(mem[k] & BC_MEMBER_MODEL);
      uint32_t wd = (uint32_t)m >> 6;
      uint64_t bit = 1ull << (m & 63);
      /* best(): members come sorted by quality (the loader checks) */
      if (ord == BC_ORD_BEST && s.nb == need && -im->models[m].quality > s.buf[s.nb - 1].k1)
        break;
      if ((taken[wd] & bit) || (okc && !(okc[wd] & oko[wd] & bit))) continue;
      int dropped = s.nb == need ? s.buf[s.nb - 1].m : -1;
      if (sel_offer(x, &s, ord, plain, m, (mem[k] & BC_MEMBER_CHECK) != 0,
                    s.hw ? (int)(s.hw[wd] >> (m & 63) & 1) : 0)) {
        if (dropped >= 0) taken[dropped >> 6] &= ~(1ull << (dropped & 63));
        taken[wd] |= bit;   /* a member listed twice is met once */
      }
    }
  }
  for (int i = 0; i < s.nb; i++) {
    if (!take_pick(x, s.buf[i].m)) continue;   /* another decision has the probe */
    x->cand[x->ncand++] = s.buf[i].m;
  }
}

static void vm_cand_sets(vm_run *x, const bc_insn *in, int need) {
  int plain = x->q.plain;   /* no cached tokens, no reasoning: a loop of its own */
  switch (in->a & BC_CAND_ORDER) {
  case BC_ORD_CHEAPEST:
    if (plain) sel_walk(x, in, need, BC_ORD_CHEAPEST, 1);
    else sel_walk(x, in, need, BC_ORD_CHEAPEST, 0);
    break;
  case BC_ORD_FASTEST: sel_walk(x, in, need, BC_ORD_FASTEST, plain); break;
  default: sel_walk(x, in, need, BC_ORD_BEST, plain); break;
  }
}

/* CAND a, b, c: BC_OPCODES in bc.h says what it does. */
static void vm_cand(vm_run *x, const bc_insn *in, uint32_t at) {
  const bc_image *im = x->im;
  const bc_pool *pool = &im->pools[in->c];
  int need = (int)x->route->fallbacks + 1 - x->ncand, nb = 0;
  unsigned ord = in->a & BC_CAND_ORDER;
  vm_pick buf[LANE_MAX_CANDIDATES];
  if (x->trace) trace(x, LANE_EV_SELECT, cand_place(x, at), 1, 0, 0.0);
  if (need <= 0) return;
  if (x->plan && ord != BC_ORD_LISTED) { vm_cand_sets(x, in, need); return; }
  int t0 = x->trace ? x->trace->n : 0;
  /* With at most 64 models, the candidates chosen and this selection's
   * picks are a mask instead of two scans per member. */
  int small = im->nmodels <= 64;
  uint64_t taken = 0;
  for (int i = 0; small && i < x->ncand; i++) taken |= 1ull << x->cand[i];
  for (uint32_t k = 0; k < pool->count; k++) {
    uint32_t mem = im->members[pool->first + k];
    int m = (int)(mem & BC_MEMBER_MODEL), pos;
    vm_pick pk = { m, 0, 0 };
    if (ord == BC_ORD_LISTED && nb == need) break;
    /* best(): members come sorted by quality (the loader checks), so once
     * the picks are full, a lower quality can never displace one. */
    if (ord == BC_ORD_BEST && nb == need && -im->models[m].quality > buf[nb - 1].k1) break;
    if (small ? (taken >> m & 1) : contains(x->cand, x->ncand, m) || picked(buf, nb, m)) continue;
    x->model = (uint32_t)m;   /* the native checks, then the filter */
    int check = (in->a & BC_CAND_FITS) && !fits(x) ? LANE_CHECK_FITS
              : (in->a & BC_CAND_HEALTHY) && !healthy(x, (uint32_t)m) ? LANE_CHECK_HEALTHY
              : (mem & BC_MEMBER_CHECK) && in->b && !member_filter(x, in->b - 1u, (uint32_t)m)
              ? LANE_CHECK_FILTER : 0;
    if (check) {
      if (x->trace) trace_ev(x, LANE_EV_MEMBER, m, 0, 0, cost_q(&im->models[m], &x->q), check);
      continue;
    }
    TRACE(x, LANE_EV_MEMBER, m, 1, 0, cost_q(&im->models[m], &x->q));
    switch (ord) {
    case BC_ORD_CHEAPEST: pk.k1 = cost_q(&im->models[m], &x->q); break;
    case BC_ORD_FASTEST: {
      double p95 = vm_latency(x->rt, (uint32_t)m, x->now, 1);
      pk.k1 = p95 > 0 ? p95 : INFINITY;
      pk.k2 = cost_q(&im->models[m], &x->q);   /* equally fast: the cheaper */
      break;
    }
    case BC_ORD_BEST:
      pk.k1 = -im->models[m].quality;
      pk.k2 = cost_q(&im->models[m], &x->q);
      break;
    default: break;
    }
    /* Only a strictly better pick moves ahead, so ties keep member order;
     * with the picks full, one no better than the last is rejected at once. */
    if (nb == need && !VM_BETTER(pk, buf[nb - 1])) continue;
    if (small && nb == need) taken &= ~(1ull << buf[nb - 1].m);   /* the last one drops out */
    if (small) taken |= 1ull << m;
    pos = nb < need ? nb++ : nb - 1;
    for (; pos > 0 && VM_BETTER(pk, buf[pos - 1]); pos--) buf[pos] = buf[pos - 1];
    buf[pos] = pk;
  }
#undef VM_BETTER
  if (x->trace) rank_trace(x, t0, ord);
  for (int i = 0; i < nb; i++) {
    if (!take_pick(x, buf[i].m)) continue;   /* another decision has the probe */
    TRACE(x, LANE_EV_CHOSEN, buf[i].m, 1, 0, 0.0);
    x->cand[x->ncand++] = buf[i].m;
  }
}

/* ---------------------------------------------------------------------
 * The interpreter
 * ------------------------------------------------------------------- */
#define vmfetch()      (in = &code[pc++], steps++)
#ifdef LANE_VM_GOTO
/* Threaded: each case fetches and jumps to the next itself, so each has
 * its own indirect jump for the branch predictor to learn. */
#define vmdispatch(o)  goto *vm_labels[o];
#define vmcase(op)     L_##op:
#define vmbreak        do { vmfetch(); goto *vm_labels[in->op]; } while (0)
#else
#define vmdispatch(o)  switch (o)
#define vmcase(op)     case BC_OP_##op:
#define vmbreak        continue
#endif

#define T1 st[sp - 1]                       /* top */
#define T2 st[sp - 2]                       /* below top */
/* Checked arithmetic and conversions: the sem_* function, a fault on
 * error. */
#define INT_OP(fn)  { int64_t r_; if (fn(T2.v.i, T1.v.i, &r_)) goto fault; \
                      T2.v.i = r_; sp--; vmbreak; }
#define UINT_OP(fn) { uint64_t r_; if (fn(T2.v.u, T1.v.u, &r_)) goto fault; \
                      T2.v.u = r_; sp--; vmbreak; }
#define CONV(fn, from, to) { if (fn(T1.v.from, &T1.v.to)) goto fault; vmbreak; }
/* A uint operation of a uint (or an int's bits) and an int count. */
#define UINT_OP_N(fn) { uint64_t r_; if (fn(T2.v.u, T1.v.i, &r_)) goto fault; \
                        T2.v.u = r_; sp--; vmbreak; }
#define DBL_OP(op)  { T2.v.d = T2.v.d op T1.v.d; sp--; vmbreak; }
#define CMP(m, op)  { T2.v.i = T2.v.m op T1.v.m; sp--; vmbreak; }
#define SCMP(op)    { STR_STEPS(BC_OP_LT_S, T2.n, T1.n); \
                      T2.v.i = scmp(&T2, &T1) op 0; sp--; vmbreak; }
/* Counts the steps string work costs (bc_len_steps, the cost model). */
#define STR_STEPS(op, a, b) (steps += (uint32_t)bc_len_steps(op, a, b))
#define PUSH(field, val) { st[sp].v.field = (val); st[sp].n = 0; sp++; vmbreak; }
/* The fused cases: for each jump, the value r_ of the sequence of k_
 * instructions, then the jump as FUSED_JUMP does it. */
#define VM_XCMPS(X) X(EQ, ==) X(NE, !=) X(LT, <) X(LE, <=) X(GT, >) X(GE, >=)
#define VM_XCASES(fam_, cmp_, r_, k_)                                         \
  L_##fam_##_##cmp_##_F: {                                                    \
    int r = (r_);                                                         \
    steps += (k_);                                                        \
    pc = r ? pc + (k_) : in[k_].c;                                        \
    vmbreak;                                                              \
  }                                                                       \
  L_##fam_##_##cmp_##_FK: {                                                   \
    int r = (r_);                                                         \
    steps += (k_);                                                        \
    if (r) { pc += (k_); vmbreak; }                                       \
    st[sp].v.i = 0; st[sp].n = 0; sp++; pc = in[k_].c;                    \
    vmbreak;                                                              \
  }                                                                       \
  L_##fam_##_##cmp_##_TK: {                                                   \
    int r = (r_);                                                         \
    steps += (k_);                                                        \
    if (!r) { pc += (k_); vmbreak; }                                      \
    st[sp].v.i = 1; st[sp].n = 0; sp++; pc = in[k_].c;                    \
    vmbreak;                                                              \
  }                                                                       \
  L_##fam_##_##cmp_##_FKJ: {  /* false: the JF it keeps 0 for jumps */    \
    int r = (r_);                                                         \
    steps += (k_);                                                        \
    if (r) { pc += (k_); vmbreak; }                                       \
    steps++;                                                              \
    pc = code[in[k_].c].c;                                                \
    vmbreak;                                                              \
  }                                                                       \
  L_##fam_##_##cmp_##_TKJ: {  /* true: the JF it keeps 1 for falls through */ \
    int r = (r_);                                                         \
    steps += (k_);                                                        \
    if (!r) { pc += (k_); vmbreak; }                                      \
    steps++;                                                              \
    pc = in[k_].c + 1;                                                    \
    vmbreak;                                                              \
  }
/* A fused instruction's jump (fused_value's r), in a switch-dispatch
 * build: k_ more instructions ran, the jump is the last of them. */
#define FUSED_JUMP(r_, k_) {                                              \
    steps += (k_);                                                        \
    switch (VM_FJ(in->a)) {                                               \
    case VM_FJ_F: pc = (r_) ? pc + (k_) : in[k_].c; break;                \
    case VM_FJ_F_KEEP_JF:                                                 \
      if (r_) pc += (k_); else { steps++; pc = code[in[k_].c].c; }        \
      break;                                                              \
    case VM_FJ_T_KEEP_JF:                                                 \
      if (!(r_)) pc += (k_); else { steps++; pc = in[k_].c + 1; }         \
      break;                                                              \
    case VM_FJ_F_KEEP:                                                    \
      if (r_) { pc += (k_); break; }                                      \
      st[sp].v.i = (r_); st[sp].n = 0; sp++; pc = in[k_].c; break;        \
    default:                                                              \
      if (!(r_)) { pc += (k_); break; }                                   \
      st[sp].v.i = (r_); st[sp].n = 0; sp++; pc = in[k_].c; break;        \
    }                                                                     \
    vmbreak;                                                              \
  }

/* The interpreter starts on a cache line: where the linker happens to put
 * it otherwise moved the decision benchmark by 12% (tests/bench) whenever
 * code before it in liblane grew or shrank. */
#if defined(__GNUC__)
#define VM_HOT_ALIGN __attribute__((aligned(64)))
#else
#define VM_HOT_ALIGN
#endif

/* The error an explain region raised, for its explanation: the left
 * side's of OR_E and AND_E (noted when it was raised), else the faulting
 * operation's; top is its operand on top of the stack. */
__attribute__((cold, noinline))
static void note_fault(vm_run *x, const bc_insn *in, const vmval *top) {
  if (in->op == BC_OP_OR_E || in->op == BC_OP_AND_E) return;
  x->fault = sem_fault_text(in->op, top->v.u == 0);
}

/* Runs route code (filter == 0) from pc until ENDRULE decides or NOMATCH,
 * returning LANE_OK or LANE_ENOMATCH; or filter code (filter 1) until
 * FRET, returning 1 if the model passes and 0 if it fails or raises an
 * error; or an explain region (filter 2) until XRET, returning 1 with its
 * value in x->xval, or 0 when it raised the error x->fault. */
/* The instructions that read maps, build strings, match patterns or work
 * with times: out of vm_exec's loop, so that its registers stay the hot
 * opcodes' (they cost a decision that uses none of them nothing). st and
 * sp are vm_exec's operand stack; returns the new sp, or -1 for a fault. */
static __attribute__((noinline)) int vm_ext(vm_run *x, const bc_insn *in, vmval *st, int sp) {
  const bc_image *im = x->im;
#define MAP_OF(f) ((x->r->set >> (f) & 1) ? x->r->v[f].s.p : NULL)
#define MAP_LEN(f) ((x->r->set >> (f) & 1) ? x->r->v[f].s.n : 0)
#define MAP_STR(f) (bc_unit_type(im->fields[f].unit) == LANE_T_STRING)   /* lists' too */
#define X_STEPS(op, a, b) (x->steps += (uint32_t)bc_len_steps(op, a, b))
#undef PUSH
#define PUSH(field, val) { st[sp].v.field = (val); st[sp].n = 0; return sp + 1; }
  switch (in->op) {
  case BC_OP_MAP_GET: {
    const char *v_;
    size_t vn_;
    X_STEPS(BC_OP_MAP_GET, MAP_LEN(in->c), 0);
    if (!sem_map_find(MAP_OF(in->c), MAP_LEN(in->c), MAP_STR(in->c), T1.v.s, T1.n, &v_, &vn_))
      return -1;
    if (MAP_STR(in->c)) { T1.v.s = v_; T1.n = vn_; }
    else { memcpy(&T1.v.u, v_, 8); T1.n = 0; }
    return sp;
  }
  case BC_OP_MAP_HAS: {
    const char *v_;
    size_t vn_;
    X_STEPS(BC_OP_MAP_HAS, MAP_LEN(in->c), 0);
    T1.v.i = sem_map_find(MAP_OF(in->c), MAP_LEN(in->c), MAP_STR(in->c), T1.v.s, T1.n, &v_, &vn_);
    T1.n = 0;
    return sp;
  }
  case BC_OP_MAP_SIZE: PUSH(i, (int64_t)sem_map_count(MAP_OF(in->c), MAP_LEN(in->c)))
  case BC_OP_LIST_GET: case BC_OP_LIST_HAS: {   /* a list: a map of empty keys */
    const char *m_ = MAP_OF(in->c), *k_, *v_;
    size_t at_ = 4, kn_, vn_;
    uint32_t count_ = sem_map_count(m_, MAP_LEN(in->c));
    X_STEPS(BC_OP_LIST_HAS, MAP_LEN(in->c), 0);
    if (in->op == BC_OP_LIST_GET && (T1.v.i < 0 || T1.v.i >= (int64_t)count_)) return -1;
    for (uint32_t i_ = 0; i_ < count_; i_++) {
      sem_map_next(m_, &at_, 1, &k_, &kn_, &v_, &vn_);
      if (in->op == BC_OP_LIST_GET && (int64_t)i_ == T1.v.i) {
        T1.v.s = v_; T1.n = vn_;
        return sp;
      }
      if (in->op == BC_OP_LIST_HAS && vn_ == T1.n && (!vn_ || !memcmp(v_, T1.v.s, vn_))) {
        T1.v.i = 1; T1.n = 0;
        return sp;
      }
    }
    T1.v.i = 0; T1.n = 0;
    return sp;
  }
  case BC_OP_ITER: case BC_OP_ITER_N: {
    int r_ = vm_iter(x, in);
    if (r_ < 0) return -1;
    PUSH(i, r_)
  }
  case BC_OP_S_SPLIT_N: case BC_OP_S_SPLIT_HAS: case BC_OP_S_SPLIT_GET: {
    /* s.split(sep) consumed part by part: size(), x in, [i] */
    vmval *s_ = &st[sp - 2 - (in->op == BC_OP_S_SPLIT_GET)], *sep_ = s_ + 1;
    vmval *o_ = in->op == BC_OP_S_SPLIT_HAS ? s_ - 1 : s_ + 2;   /* x, or i */
    const char *p_;
    size_t at_ = 0, pn_;
    int64_t i_ = 0;
    X_STEPS(in->op, s_->n, sep_->n);
    if (in->op == BC_OP_S_SPLIT_GET && o_->v.i < 0) return -1;
    while (sem_split_next(s_->v.s, s_->n, sep_->v.s, sep_->n, &at_, &p_, &pn_)) {
      x->steps += BC_COST_PART;
      if (in->op == BC_OP_S_SPLIT_GET && i_ == o_->v.i) {
        s_->v.s = p_; s_->n = pn_;
        return sp - 2;
      }
      if (in->op == BC_OP_S_SPLIT_HAS && pn_ == o_->n && (!pn_ || !memcmp(p_, o_->v.s, pn_))) {
        o_->v.i = 1; o_->n = 0;
        return sp - 2;
      }
      i_++;
    }
    if (in->op == BC_OP_S_SPLIT_GET) return -1;
    if (in->op == BC_OP_S_SPLIT_HAS) { o_->v.i = 0; o_->n = 0; return sp - 2; }
    s_->v.i = i_; s_->n = 0;
    return sp - 1;
  }
  case BC_OP_LIST_JOIN: {   /* the items, T1 between them, into the scratch */
    const char *m_ = MAP_OF(in->c), *k_, *v_;
    size_t at_ = 4, kn_, vn_, len_ = 0, room_ = vm_room(x);
    uint32_t count_ = sem_map_count(m_, MAP_LEN(in->c));
    char *o_ = x->sbuf + x->sused;
    for (uint32_t i_ = 0; i_ < count_; i_++) {
      sem_map_next(m_, &at_, 1, &k_, &kn_, &v_, &vn_);
      if ((i_ ? T1.n : 0) + vn_ > room_ - len_) {
        X_STEPS(BC_OP_LIST_JOIN, MAP_LEN(in->c), len_);
        return -1;
      }
      if (i_ && T1.n) { memcpy(o_ + len_, T1.v.s, T1.n); len_ += T1.n; }
      if (vn_) { memcpy(o_ + len_, v_, vn_); len_ += vn_; }
    }
    X_STEPS(BC_OP_LIST_JOIN, MAP_LEN(in->c), len_);
    x->sused += (uint32_t)len_;
    T1.v.s = o_; T1.n = len_;
    return sp;
  }
  case BC_OP_MVAR: {
    if (!in->b && im->fields[in->c].type == LANE_T_LIST) PUSH(i, x->iter[in->a].i)   /* index */
    const char *p_ = in->b ? x->iter[in->a].v : x->iter[in->a].k;
    size_t n_ = in->b ? x->iter[in->a].vn : x->iter[in->a].kn;
    if (!in->b || MAP_STR(in->c)) { st[sp].v.s = p_; st[sp].n = n_; }
    else { memcpy(&st[sp].v.u, p_, 8); st[sp].n = 0; }
    sp++;
    return sp;
  }
  case BC_OP_S_CAT: {
    char *p_ = vm_scratch(x, T2.n + T1.n);
    if (!p_) return -1;
    X_STEPS(BC_OP_S_CAT, T2.n, T1.n);
    if (T2.n) memcpy(p_, T2.v.s, T2.n);
    if (T1.n) memcpy(p_ + T2.n, T1.v.s, T1.n);
    T2.v.s = p_; T2.n += T1.n; sp--;
    return sp;
  }
  case BC_OP_S_LOWER: case BC_OP_S_UPPER: {
    char *p_ = vm_scratch(x, T1.n);
    if (!p_) return -1;
    X_STEPS(BC_OP_S_LOWER, T1.n, 0);
    sem_ascii_case(T1.v.s, T1.n, in->op == BC_OP_S_UPPER, p_);
    T1.v.s = p_;
    return sp;
  }
  case BC_OP_S_REPLACE: case BC_OP_S_REPLACE_N: {
    int n4_ = in->op == BC_OP_S_REPLACE_N;
    vmval *s_ = &st[sp - 3 - n4_];
    size_t len_ = 0;
    if (sem_replace(s_->v.s, s_->n, s_[1].v.s, s_[1].n, s_[2].v.s, s_[2].n,
                    n4_ ? T1.v.i : -1, x->sbuf + x->sused, vm_room(x), &len_))
      return -1;
    X_STEPS(BC_OP_S_REPLACE, s_->n + s_[1].n, len_);
    s_->v.s = x->sbuf + x->sused;
    s_->n = len_;
    x->sused += (uint32_t)len_;
    sp -= 2 + n4_;
    return sp;
  }
  case BC_OP_I2S: case BC_OP_U2S: case BC_OP_D2S: case BC_OP_TS2S: case BC_OP_DUR2S: {
    char b_[48];   /* formatted, then kept in the scratch */
    X_STEPS(in->op, 0, 0);
    int n_ = in->op == BC_OP_D2S ? sem_dtoa(b_, sizeof b_, T1.v.d)
           : in->op == BC_OP_I2S ? snprintf(b_, sizeof b_, "%lld", (long long)T1.v.i)
           : in->op == BC_OP_U2S ? snprintf(b_, sizeof b_, "%llu", (unsigned long long)T1.v.u)
           : in->op == BC_OP_TS2S ? sem_ts_format(T1.v.i, b_, sizeof b_)
                                  : sem_dur_format(T1.v.d, b_, sizeof b_);
    char *p_ = vm_scratch(x, (size_t)n_);
    if (!p_) return -1;
    memcpy(p_, b_, (size_t)n_);
    T1.v.s = p_; T1.n = (size_t)n_;
    return sp;
  }
  case BC_OP_S_MATCH: {
    const lane_program *p_ = x->rt->prog;
    X_STEPS(BC_OP_S_MATCH, T1.n, p_->re_states[in->b]);
    int m_ = p_->re_engine->match(p_->re[in->b], T1.v.s, T1.n);
    if (m_ < 0) return -1;
    T1.v.i = m_; T1.n = 0;
    return sp;
  }
  case BC_OP_SEC2TS: {
    if (T1.v.i < SEM_TS_MIN / 1000 || T1.v.i > SEM_TS_MAX / 1000) return -1;
    T1.v.i *= 1000;
    return sp;
  }
  case BC_OP_TS_PARSE: {
    int64_t t_;
    X_STEPS(BC_OP_TS_PARSE, T1.n, 0);
    if (sem_ts_parse(T1.v.s, T1.n, &t_)) return -1;
    T1.v.i = t_; T1.n = 0;
    return sp;
  }
  case BC_OP_DUR_PARSE: {
    double d_;
    X_STEPS(BC_OP_DUR_PARSE, T1.n, 0);
    if (sem_dur_parse(T1.v.s, T1.n, &d_)) return -1;
    T1.v.d = d_; T1.n = 0;
    return sp;
  }
  case BC_OP_TS_ADD: { if (sem_ts_add(T2.v.i, T1.v.d, &T2.v.i)) return -1; sp--; return sp; }
  case BC_OP_TS_ADD_R: {
    int64_t t_;
    if (sem_ts_add(T1.v.i, T2.v.d, &t_)) return -1;
    T2.v.i = t_; sp--;
    return sp;
  }
  case BC_OP_TS_SUB: { if (sem_ts_add(T2.v.i, -T1.v.d, &T2.v.i)) return -1; sp--; return sp; }
  case BC_OP_TS_PART: {
    sem_tz z_;
    X_STEPS(BC_OP_TS_PART, 0, 0);
    int zoned_ = in->c != BC_NONE && !sem_tz_parse(im->str[in->c].p, &z_);   /* verified */
    T1.v.i = sem_ts_part(T1.v.i, in->a, zoned_ ? &z_ : NULL);
    return sp;
  }
  case BC_OP_DUR_PART: {
    static const double per_[] = {3600000.0, 60000.0, 1000.0, 1.0};
    double q_ = T1.v.d / per_[in->a - SEM_TS_HOURS];
    T1.v.i = q_ != q_ ? 0 : q_ >= 9.2e18 ? INT64_MAX : q_ <= -9.2e18 ? INT64_MIN : (int64_t)q_;
    return sp;
  }
  case BC_OP_S2D: {
    double d_;
    X_STEPS(BC_OP_S2D, T1.n, 0);
    if (sem_parse_d(T1.v.s, T1.n, &d_)) return -1;
    T1.v.d = d_; T1.n = 0;
    return sp;
  }
  default: return -1;
  }
#undef MAP_OF
#undef MAP_LEN
#undef MAP_STR
#undef X_STEPS
#undef PUSH
#define PUSH(field, val) { st[sp].v.field = (val); st[sp].n = 0; sp++; vmbreak; }
}

static VM_HOT_ALIGN int vm_exec(vm_run *x, uint32_t pc, int filter) {
#ifdef LANE_VM_GOTO
  static const void *const vm_labels[VM_NOPS] = {
#define BC_OP_LABEL(name, fmt, i, o, w, fail, reg, flow, empty, doc) &&L_##name,
    BC_OPCODES(BC_OP_LABEL)
#undef BC_OP_LABEL
#define VM_XJ3(fam_, cmp_) &&L_##fam_##_##cmp_##_F, &&L_##fam_##_##cmp_##_FK, &&L_##fam_##_##cmp_##_TK, \
                           &&L_##fam_##_##cmp_##_FKJ, &&L_##fam_##_##cmp_##_TKJ,
#define VM_XI_LABELS(cmp_, op_) VM_XJ3(XI, cmp_)
#define VM_XD_LABELS(cmp_, op_) VM_XJ3(XD, cmp_)
    VM_XCMPS(VM_XI_LABELS) VM_XCMPS(VM_XD_LABELS) VM_XJ3(XS, EQ) VM_XJ3(XS, NE)
    VM_XJ3(XL, P) VM_XJ3(XL, N)
#undef VM_XI_LABELS
#undef VM_XD_LABELS
#undef VM_XJ3
  };
#endif
  const bc_image *im = x->im;
  /* 3: a part's copy; 2 (explain regions) the code as verified; else the
   * code with fused compare-and-jumps when the loader made it */
  const bc_insn *code = filter == 3 ? x->xcode : filter != 2 && x->fcode ? x->fcode : im->code, *in;
  vmval st[BC_MAX_STACK];
  int sp = 0;
  uint32_t steps = 0;   /* added to x->steps on the way out: kept in a register */
  struct { uint32_t pc; int sp; } hs[BC_MAX_TRY];   /* TRY handlers */
  int nh = 0;

  /* A filter run starts from CAND, whose stack is empty: no string built
   * before it is live, so the scratch is all its own (an iteration run
   * gives back what it built, vm_iter; RULE empties it too). */
  if (filter & 1) x->sused = 0;
  for (;;) {
    vmfetch();
    vmdispatch(in->op) {
    /* What each opcode does, its operands and edge cases: BC_OPCODES in
     * bc.h (doc/opcodes.md). Here, only how: the cases stay short, longer
     * work is a named helper, string work counts its steps (STR_STEPS). */
    vmcase(PUSH_I) PUSH(i, im->kint[in->c])
    vmcase(PUSH_U) PUSH(u, (uint64_t)im->kint[in->c])
    vmcase(PUSH_D) PUSH(d, im->kdbl[in->c])
    vmcase(PUSH_B) PUSH(i, in->a)
    vmcase(PUSH_S) {
      st[sp].v.s = im->str[in->c].p;
      st[sp].n = im->str[in->c].len;
      sp++;
      vmbreak;
    }
    vmcase(LOAD) { st[sp++] = load_field(x, in->c); vmbreak; }
    /* Fused: LOAD f; [PUSH k; CMP | NOT]; Jx t (vm.h, spec.c). */
#ifdef LANE_VM_GOTO
    /* Fused: LOAD f; [PUSH k; CMP | NOT]; Jx (vm.h, spec.c), a case for
     * each comparison and jump (vm_x_op). */
#define VM_XI_CASES(cmp_, op_)                                            \
    VM_XCASES(XI, cmp_, (x->r->set >> in->c & 1 ? x->r->v[in->c].i : 0) op_ im->kint[in[1].c], 3)
#define VM_XD_CASES(cmp_, op_)                                            \
    VM_XCASES(XD, cmp_, (x->r->set >> in->c & 1 ? x->r->v[in->c].d : 0.0) op_ im->kdbl[in[1].c], 3)
    VM_XCMPS(VM_XI_CASES)
    VM_XCMPS(VM_XD_CASES)
    VM_XCASES(XS, EQ, fused_s(x, in, in[1].c, &steps), 3)
    VM_XCASES(XS, NE, fused_s(x, in, in[1].c, &steps), 3)
    VM_XCASES(XL, P, fused_lj(x, in), 1)
    VM_XCASES(XL, N, fused_lj(x, in), 2)
#undef VM_XI_CASES
#undef VM_XD_CASES
#endif
    vmcase(NOT) { T1.v.i = !T1.v.i; vmbreak; }
    vmcase(JMP) { pc = in->c; vmbreak; }
    vmcase(JF) { if (!st[--sp].v.i) pc = in->c; vmbreak; }
    vmcase(JF_KEEP) { if (!T1.v.i) pc = in->c; else sp--; vmbreak; }
    vmcase(JT_KEEP) { if (T1.v.i) pc = in->c; else sp--; vmbreak; }
    vmcase(ADD_I) INT_OP(sem_add_i)
    vmcase(SUB_I) INT_OP(sem_sub_i)
    vmcase(MUL_I) INT_OP(sem_mul_i)
    vmcase(DIV_I) INT_OP(sem_div_i)
    vmcase(MOD_I) INT_OP(sem_mod_i)
    vmcase(NEG_I) CONV(sem_neg_i, i, i)
    vmcase(ADD_U) UINT_OP(sem_add_u)
    vmcase(SUB_U) UINT_OP(sem_sub_u)
    vmcase(MUL_U) UINT_OP(sem_mul_u)
    vmcase(DIV_U) UINT_OP(sem_div_u)
    vmcase(MOD_U) UINT_OP(sem_mod_u)
    vmcase(ADD_D) DBL_OP(+)
    vmcase(SUB_D) DBL_OP(-)
    vmcase(MUL_D) DBL_OP(*)
    vmcase(DIV_D) DBL_OP(/)
    vmcase(NEG_D) { T1.v.d = -T1.v.d; vmbreak; }
    vmcase(I2D) { T1.v.d = (double)T1.v.i; vmbreak; }
    vmcase(U2D) { T1.v.d = (double)T1.v.u; vmbreak; }
    vmcase(D2I) CONV(sem_d2i, d, i)
    vmcase(D2U) CONV(sem_d2u, d, u)
    vmcase(I2U) CONV(sem_i2u, i, u)
    vmcase(U2I) CONV(sem_u2i, u, i)
    vmcase(EQ_I) CMP(i, ==)
    vmcase(NE_I) CMP(i, !=)
    vmcase(LT_I) CMP(i, <)
    vmcase(LE_I) CMP(i, <=)
    vmcase(GT_I) CMP(i, >)
    vmcase(GE_I) CMP(i, >=)
    vmcase(EQ_U) CMP(u, ==)
    vmcase(NE_U) CMP(u, !=)
    vmcase(LT_U) CMP(u, <)
    vmcase(LE_U) CMP(u, <=)
    vmcase(GT_U) CMP(u, >)
    vmcase(GE_U) CMP(u, >=)
    vmcase(EQ_D) CMP(d, ==)
    vmcase(NE_D) CMP(d, !=)
    vmcase(LT_D) CMP(d, <)
    vmcase(LE_D) CMP(d, <=)
    vmcase(GT_D) CMP(d, >)
    vmcase(GE_D) CMP(d, >=)
    vmcase(EQ_S) {
      STR_STEPS(BC_OP_EQ_S, T2.n, T1.n);
      T2.v.i = sem_bytes_eq(T2.v.s, T2.n, T1.v.s, T1.n); sp--; vmbreak;
    }
    vmcase(NE_S) {
      STR_STEPS(BC_OP_NE_S, T2.n, T1.n);
      T2.v.i = !sem_bytes_eq(T2.v.s, T2.n, T1.v.s, T1.n); sp--; vmbreak;
    }
    vmcase(LT_S) SCMP(<)
    vmcase(LE_S) SCMP(<=)
    vmcase(GT_S) SCMP(>)
    vmcase(GE_S) SCMP(>=)
    vmcase(EQ_B) CMP(i, ==)
    vmcase(NE_B) CMP(i, !=)
    vmcase(LT_B) CMP(i, <)
    vmcase(LE_B) CMP(i, <=)
    vmcase(GT_B) CMP(i, >)
    vmcase(GE_B) CMP(i, >=)
    vmcase(IN_LIST) { T1.v.i = in_list(im, in->c, &T1, &x->steps); T1.n = 0; vmbreak; }
    vmcase(S_SIZE) {
      STR_STEPS(BC_OP_S_SIZE, T1.n, 0);
      T1.v.i = sem_utf8_size(T1.v.s, T1.n); T1.n = 0; vmbreak;
    }
    vmcase(S_STARTS) {
      STR_STEPS(BC_OP_S_STARTS, T2.n, T1.n);
      T2.v.i = sem_starts(T2.v.s, T2.n, T1.v.s, T1.n); T2.n = 0; sp--; vmbreak;
    }
    vmcase(S_ENDS) {
      STR_STEPS(BC_OP_S_ENDS, T2.n, T1.n);
      T2.v.i = sem_ends(T2.v.s, T2.n, T1.v.s, T1.n); T2.n = 0; sp--; vmbreak;
    }
    vmcase(S_CONTAINS) {
      STR_STEPS(BC_OP_S_CONTAINS, T2.n, T1.n);
      T2.v.i = sem_contains(T2.v.s, T2.n, T1.v.s, T1.n); T2.n = 0; sp--; vmbreak;
    }
    vmcase(S_CHARAT) {
      STR_STEPS(BC_OP_S_CHARAT, T2.n, 0);
      const char *r_; size_t n_;
      if (sem_char_at(T2.v.s, T2.n, T1.v.i, &r_, &n_)) goto fault;
      T2.v.s = r_; T2.n = n_; sp--; vmbreak;
    }
    vmcase(S_SUBSTR) {
      STR_STEPS(BC_OP_S_SUBSTR, T2.n, 0);
      const char *r_; size_t n_;
      if (sem_substring(T2.v.s, T2.n, T1.v.i, 0, 1, &r_, &n_)) goto fault;
      T2.v.s = r_; T2.n = n_; sp--; vmbreak;
    }
    vmcase(S_SUBSTR2) {
      STR_STEPS(BC_OP_S_SUBSTR2, st[sp - 3].n, 0);
      const char *r_; size_t n_;
      if (sem_substring(st[sp - 3].v.s, st[sp - 3].n, T2.v.i, T1.v.i, 0, &r_, &n_)) goto fault;
      st[sp - 3].v.s = r_; st[sp - 3].n = n_; sp -= 2; vmbreak;
    }
    /* indexOf, lastIndexOf: from 0 (and never an error), or from an index */
#define VM_FIND(fn_, op_) {                                                  \
      STR_STEPS(op_, T2.n, T1.n);                                           \
      int64_t r_;                                                           \
      fn_(T2.v.s, T2.n, T1.v.s, T1.n, 0, 0, &r_);                           \
      T2.v.i = r_; T2.n = 0; sp--; vmbreak;                                 \
    }
#define VM_FIND_AT(fn_, op_) {                                               \
      STR_STEPS(op_, st[sp - 3].n, T2.n);                                   \
      int64_t r_;                                                           \
      if (fn_(st[sp - 3].v.s, st[sp - 3].n, T2.v.s, T2.n, T1.v.i, 1, &r_))  \
        goto fault;                                                         \
      st[sp - 3].v.i = r_; st[sp - 3].n = 0; sp -= 2; vmbreak;              \
    }
    vmcase(S_INDEX) VM_FIND(sem_index_of, BC_OP_S_INDEX)
    vmcase(S_INDEX_AT) VM_FIND_AT(sem_index_of, BC_OP_S_INDEX_AT)
    vmcase(S_LASTINDEX) VM_FIND(sem_last_index_of, BC_OP_S_LASTINDEX)
    vmcase(S_LASTINDEX_AT) VM_FIND_AT(sem_last_index_of, BC_OP_S_LASTINDEX_AT)
#undef VM_FIND
#undef VM_FIND_AT
    vmcase(S_TRIM) {
      STR_STEPS(BC_OP_S_TRIM, T1.n, 0);
      const char *r_; size_t n_;
      sem_trim(T1.v.s, T1.n, &r_, &n_);
      T1.v.s = r_; T1.n = n_; vmbreak;
    }
    /* int(s), uint(s), bool(s): parsed whole, else an error */
#define VM_PARSE(fn_, op_, ty_, m_) {                                        \
      STR_STEPS(op_, T1.n, 0);                                              \
      ty_ r_;                                                               \
      if (fn_(T1.v.s, T1.n, &r_)) goto fault;                               \
      T1.v.m_ = r_; T1.n = 0; vmbreak;                                      \
    }
    vmcase(S2I) VM_PARSE(sem_parse_i, BC_OP_S2I, int64_t, i)
    vmcase(S2U) VM_PARSE(sem_parse_u, BC_OP_S2U, uint64_t, u)
    vmcase(S2B) VM_PARSE(sem_parse_b, BC_OP_S2B, int64_t, i)
#undef VM_PARSE
    vmcase(BUCKET_S) {
      STR_STEPS(BC_OP_BUCKET_S, T1.n, 0);
      T1.v.d = sem_bucket_s(T1.v.s, T1.n); T1.n = 0; vmbreak;
    }
    vmcase(BUCKET_I) { T1.v.d = sem_bucket_u(T1.v.u); vmbreak; }
    vmcase(BUCKET_U) { T1.v.d = sem_bucket_u(T1.v.u); vmbreak; }
    vmcase(POP) { sp--; vmbreak; }
    /* maps, iterations, strings built, patterns, times: vm_ext */
    vmcase(MAP_GET) vmcase(MAP_HAS) vmcase(MAP_SIZE) vmcase(ITER) vmcase(MVAR) vmcase(S_CAT)
    vmcase(LIST_GET) vmcase(LIST_HAS) vmcase(ITER_N) vmcase(S_SPLIT_N) vmcase(S_SPLIT_HAS)
    vmcase(S_SPLIT_GET) vmcase(LIST_JOIN)
    vmcase(S_LOWER) vmcase(S_UPPER) vmcase(S_REPLACE) vmcase(S_REPLACE_N) vmcase(I2S)
    vmcase(U2S) vmcase(D2S) vmcase(S_MATCH) vmcase(SEC2TS) vmcase(TS_PARSE) vmcase(DUR_PARSE)
    vmcase(TS_ADD) vmcase(TS_ADD_R) vmcase(TS_SUB) vmcase(TS2S) vmcase(DUR2S) vmcase(TS_PART)
    vmcase(DUR_PART) vmcase(S2D) {
      int s_ = vm_ext(x, in, st, sp);
      if (s_ < 0) goto fault;
      sp = s_;
      vmbreak;
    }
    vmcase(IRET) { x->steps += steps; return st[sp - 1].v.i != 0; }
    vmcase(B2S) { T1.n = T1.v.i ? 4 : 5; T1.v.s = T1.v.i ? "true" : "false"; vmbreak; }
    /* Timestamps (ms since the epoch) and durations (ms as a double), sem.h */
    vmcase(NOW) PUSH(i, (int64_t)x->now)
    vmcase(TS_DIFF) { T2.v.d = (double)T2.v.i - (double)T1.v.i; sp--; vmbreak; }
    vmcase(TS2I) { T1.v.i = sem_floordiv(T1.v.i, 1000); vmbreak; }
    /* CEL's math extension (sem.h has the rules that can fail) */
#define PAIR(m, e)  { T2.v.m = (e); sp--; vmbreak; }
#define UN(m, e)    { T1.v.m = (e); vmbreak; }
    vmcase(MAX_I) PAIR(i, T1.v.i > T2.v.i ? T1.v.i : T2.v.i)
    vmcase(MAX_U) PAIR(u, T1.v.u > T2.v.u ? T1.v.u : T2.v.u)
    vmcase(MAX_D) PAIR(d, sem_max_d(T2.v.d, T1.v.d))
    vmcase(MIN_I) PAIR(i, T1.v.i < T2.v.i ? T1.v.i : T2.v.i)
    vmcase(MIN_U) PAIR(u, T1.v.u < T2.v.u ? T1.v.u : T2.v.u)
    vmcase(MIN_D) PAIR(d, sem_min_d(T2.v.d, T1.v.d))
    vmcase(CEIL) UN(d, sem_ceil(T1.v.d))
    vmcase(FLOOR) UN(d, sem_floor(T1.v.d))
    vmcase(ROUND) UN(d, sem_round(T1.v.d))
    vmcase(TRUNC) UN(d, sem_trunc(T1.v.d))
    vmcase(ABS_I) CONV(sem_abs_i, i, i)
    vmcase(ABS_D) UN(d, sem_fabs(T1.v.d))
    vmcase(SIGN_I) UN(i, (T1.v.i > 0) - (T1.v.i < 0))
    vmcase(SIGN_U) UN(u, T1.v.u != 0)
    vmcase(SIGN_D) UN(d, sem_sign_d(T1.v.d))
    vmcase(ISNAN) UN(i, isnan(T1.v.d) != 0)
    vmcase(ISINF) UN(i, isinf(T1.v.d) != 0)
    vmcase(ISFINITE) UN(i, isfinite(T1.v.d) != 0)
    vmcase(BAND_I) PAIR(i, T2.v.i & T1.v.i)
    vmcase(BAND_U) PAIR(u, T2.v.u & T1.v.u)
    vmcase(BOR_I) PAIR(i, T2.v.i | T1.v.i)
    vmcase(BOR_U) PAIR(u, T2.v.u | T1.v.u)
    vmcase(BXOR_I) PAIR(i, T2.v.i ^ T1.v.i)
    vmcase(BXOR_U) PAIR(u, T2.v.u ^ T1.v.u)
    vmcase(BNOT_I) UN(i, ~T1.v.i)
    vmcase(BNOT_U) UN(u, ~T1.v.u)
    vmcase(SHL_I) vmcase(SHL_U) UINT_OP_N(sem_shl_u)
    vmcase(SHR_I) vmcase(SHR_U) UINT_OP_N(sem_shr_u)
#undef PAIR
#undef UN
    vmcase(HAS) PUSH(i, (int64_t)(x->r->set >> in->c & 1))
    vmcase(BUDGET) {
      STR_STEPS(BC_OP_BUDGET, budget_key_bytes(x, in->c), 0);
      PUSH(d, vm_budget_read(x->rt, in->c, x->r, in->a, x->now))
    }
    vmcase(M_FIELD) { st[sp++] = model_field(im, x->model, in->a); vmbreak; }
    vmcase(M_CAP) {
      x->capread = 1;   /* member_filter: the value depends on the class */
      PUSH(i, (im->models[x->model].caps >> in->c) & 1)
    }
    vmcase(M_COST) PUSH(d, cost_q(&im->models[x->model], &x->q))
    vmcase(M_FITS) PUSH(i, fits(x))
    vmcase(M_HEALTHY) PUSH(i, healthy(x, x->model))
    vmcase(M_P50) PUSH(d, vm_latency(x->rt, x->model, x->now, 0))
    vmcase(M_P95) PUSH(d, vm_latency(x->rt, x->model, x->now, 1))
    vmcase(M_ERRRATE) PUSH(d, vm_error_rate(x->rt, x->model, x->now))
    vmcase(FRET) { x->steps += steps; return (int)st[0].v.i; }
    vmcase(XRET) { x->xval = st[0]; x->steps += steps; return 1; }
    vmcase(SWITCH) { pc = switch_target(x, in->c, &x->steps); vmbreak; }
    vmcase(RULE) {
      x->cur = (int)in->c;
      TRACE(x, LANE_EV_RULE, -1, 0, im->lines ? (int)im->lines[pc - 1] : 0, 0.0);
      if (x->trace) x->rule_pc = pc - 1;
      x->ncand = 0;
      x->nshadow = 0;
      x->sused = 0;   /* the stack is empty: no string built before is live */
      vmbreak;
    }
    vmcase(CAND) { vm_cand(x, in, pc - 1); vmbreak; }
    vmcase(SHADOW) {
      if (x->nshadow < LANE_MAX_SHADOWS && !contains(x->shadow, x->nshadow, (int)in->c) &&
          (in->b == 0 || shadow_bucket(x, in->c, &x->steps) < in->b)) {
        x->shadow[x->nshadow++] = (int)in->c;
        TRACE(x, LANE_EV_SHADOW, (int)in->c, 1, 0, 0.0);
      }
      vmbreak;
    }
    vmcase(ENDRULE) {
      TRACE(x, LANE_EV_MATCH, x->ncand, x->ncand > 0, 0, 0.0);
      if (x->ncand == 0) {
        if (!x->filtered) x->filtered = x->cur + 1;
        vmbreak;
      }
      drop_answering_shadows(x);
      x->steps += steps;
      return LANE_OK;
    }
    vmcase(NOMATCH) { x->steps += steps; return LANE_ENOMATCH; }
    vmcase(TRY) { hs[nh].pc = in->c; hs[nh].sp = sp; nh++; vmbreak; }
    vmcase(ENDTRY) { nh--; vmbreak; }
    vmcase(OR_E) {
      if (!T1.v.i && T2.v.i) goto fault;
      T2.v.i = T1.v.i;
      sp--;
      vmbreak;
    }
    vmcase(AND_E) {
      if (T1.v.i && T2.v.i) goto fault;
      T2.v.i = T1.v.i;
      sp--;
      vmbreak;
    }
#ifndef LANE_VM_GOTO
    default: {   /* a fused instruction (vm.h), or unreachable: verified */
      if (in->op < BC_NOPS) return filter ? 0 : LANE_ENOMATCH;
      int r = fused_value(x, in, in[1].c, &steps);
      FUSED_JUMP(r, vm_x_span(in))
    }
#endif
    }
    vmbreak;
  fault:
    /* A runtime error: inside a TRY it resumes at the handler; else a
     * filter rejects the model, and in route code the rule does not match
     * and the route resumes at the rule's `next`. An explain region
     * (filter 2) notes which error. */
    if (filter == 2) note_fault(x, in, &T1);
    if (nh) { nh--; sp = hs[nh].sp; pc = hs[nh].pc; vmbreak; }
    if (filter) { x->steps += steps; return filter == 4 ? -1 : 0; }
    if (x->nerrors++ == 0) x->error_line = im->lines ? (int)im->lines[pc - 1] : 0;
    TRACE(x, LANE_EV_ERROR, -1, 0, im->lines ? (int)im->lines[pc - 1] : 0, 0.0);
    sp = 0;
    pc = im->rules[x->route->first_rule + (uint32_t)x->cur].next;
  }
}

/* ---------------------------------------------------------------------
 * Decisions
 * ------------------------------------------------------------------- */
int lane_decide_route(lane_runtime *rt, int route, const lane_request *r,
                      lane_decision *out) {
  return lane_decide_traced(rt, route, r, out, NULL);
}

static int decide_traced_in(lane_runtime *rt, int route, const lane_request *r,
                       lane_decision *out, lane_trace *trace) {
  const bc_image *im;
  vm_run x;
  char sbuf[BC_SCRATCH];   /* strings built; untouched by a policy that builds none */
  int rc;
  if (out) memset(out, 0, sizeof *out);
  if (!rt || !r || !out || r->prog != rt->prog || route < 0 ||
      (uint32_t)route >= rt->prog->im.nroutes)
    return LANE_EARG;
  /* trace() writes events[n] while n < cap: a bad trace is refused first */
  if (trace && (trace->cap < 0 || trace->n < 0 || (trace->cap > 0 && !trace->events)))
    return LANE_EARG;
  im = &rt->prog->im;
  x.im = im;
  x.rt = rt;
  x.r = r;
  x.route = &im->routes[route];
  x.cur = 0;
  x.model = 0;
  x.steps = 0;
  x.nerrors = 0;
  x.error_line = 0;
  x.ncand = 0;
  x.nshadow = 0;
  x.idepth = 0;
  x.sbuf = sbuf;
  x.sused = 0;
  x.scap = sizeof sbuf;
  x.now = vm_now(rt);
  vm_costq_init(&x.q, r, route_est(im, (uint32_t)route));
  x.fspec = rt->prog->fspec;
  x.xcode = rt->prog->xcode;
  x.fcode = rt->prog->fcode;
  x.plan = trace ? NULL : rt->prog->plan;   /* a trace walks every member */
  x.okc = x.oko = NULL;
  x.capread = 0;
  x.hwok = 0;
  x.nmemo = 0;
  x.npre = 0;
  x.nprobe = 0;
  x.npending = 0;
  x.filtered = 0;
  x.nxhealthy = 0;
  x.trace = trace;
  if (trace) { trace->n = 0; trace->truncated = 0; }
  rc = vm_exec(&x, x.route->start, 0);
  out->route = route;
  out->filtered_rule = x.filtered;
  out->steps = x.steps;
  out->nerrors = x.nerrors;
  out->error_line = x.error_line;
  if (rc != LANE_OK) return rc;
  out->rule = x.cur + 1;
  out->ncandidates = x.ncand;
  for (int i = 0; i < x.ncand; i++) out->candidates[i] = x.cand[i];   /* a few: no call */
  out->nshadows = x.nshadow;
  for (int i = 0; i < x.nshadow; i++) out->shadows[i] = x.shadow[i];
  out->cost = cost_q(&im->models[x.cand[0]], &x.q);
  out->output_tokens = x.q.out;
  out->output_from = x.q.from;
  for (int i = 0; i < x.nprobe; i++)
    for (int k = 0; k < x.ncand; k++)
      if (x.cand[k] == x.probe[i]) out->probed |= 1u << k;
  return LANE_OK;
}

int lane_decide_traced(lane_runtime *rt, int route, const lane_request *r,
                       lane_decision *out, lane_trace *trace) {
  vm_pin pin;
  int rc = decide_traced_in(vm_enter(rt, &pin), route, r, out, trace);
  vm_leave(&pin);
  return rc;
}

int vm_explain_region(lane_runtime *rt, const lane_request *r, const lane_decision *d,
                      uint32_t f, uint32_t model, vmval *out, const char **fault,
                      char *sbuf, size_t scap) {
  const bc_image *im = &rt->prog->im;
  vm_run x;
  memset(&x, 0, sizeof x);
  x.sbuf = sbuf;
  x.scap = (uint32_t)(scap < BC_SCRATCH ? scap : BC_SCRATCH);
  *fault = NULL;
  memset(out, 0, sizeof *out);
  if (f >= im->nfilters || im->code[im->filters[f].end - 1].op != BC_OP_XRET) return 0;
  if (model >= im->nmodels) {   /* no current model: a region must not read one */
    for (uint32_t pc = im->filters[f].start; pc < im->filters[f].end; pc++)
      if (bc_ops[im->code[pc].op].region == 'F' && im->code[pc].op != BC_OP_XRET) return 0;
    model = 0;
  }
  x.im = im;
  x.rt = rt;
  x.r = r;
  x.model = model;
  x.now = vm_now(rt);
  vm_costq_init(&x.q, r, d ? route_est(im, (uint32_t)d->route) : 0);
  x.fault = "an error";
  int took[LANE_MAX_CANDIDATES];
  for (int i = 0; d && i < d->ncandidates && i < LANE_MAX_CANDIDATES; i++)
    if (d->probed >> i & 1) took[x.nxhealthy++] = d->candidates[i];
  x.xhealthy = took;
  if (!vm_exec(&x, im->filters[f].start, 2)) {
    *fault = x.fault;
    return 0;
  }
  *out = x.xval;
  return 1;
}

static int decide_in(lane_runtime *rt, const char *route, const lane_request *r,
                lane_decision *out) {
  if (out) memset(out, 0, sizeof *out);
  if (!rt) return LANE_EARG;
  return lane_decide_route(rt, lane_route(rt->prog, route), r, out);
}

int lane_decide(lane_runtime *rt, const char *route, const lane_request *r,
                lane_decision *out) {
  vm_pin pin;
  int rc = decide_in(vm_enter(rt, &pin), route, r, out);
  vm_leave(&pin);
  return rc;
}
