/*
 * parser.y -- lane's grammar (LALR(1), pure, with locations).
 *
 * The actions only build the AST; checking is done by the compiler's
 * passes. Two small exceptions belong to reading literals: the integer
 * 9223372036854775808 is folded to INT64_MIN under a unary minus (and is
 * an error anywhere else), and a `when` rule records its condition's
 * source text as the rule's name.
 *
 * Syntax errors are reported as "unexpected X, expected A, B or C" with
 * tokens named the way users write them, and parsing resumes at the next
 * declaration, model/budget property, request field, route item or test
 * item, so one run reports several errors.
 */

%code requires {
#include <setjmp.h>
#include <stddef.h>
#include "ast.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

/* A token's or rule's extent in the source. */
typedef struct parse_loc {
  int    first_line;    /* 1-based line of the first byte */
  int    first_column;  /* 1-based byte column of the first byte */
  int    last_line;     /* line of the end */
  int    last_column;   /* column one past the last byte */
  size_t first_byte;    /* byte offset of the first byte */
  size_t last_byte;     /* byte offset one past the last byte */
  int    head_len;      /* bytes covered on the first line */
} parse_loc;

/* State shared by the lexer and the parser during one parse_file. */
typedef struct parse_state {
  ast_ctx        *ctx;      /* arena and diagnostics */
  const src_file *file;     /* the file being read */
  ast_list       *decls;    /* where declarations go */
  int             line;     /* line of the next unread byte */
  int             col;      /* column of the next unread byte */
  size_t          off;      /* offset of the next unread byte */
  parse_loc       last;     /* the last token returned, to place EOF */
  int             ntokens;  /* tokens returned so far */
  const ast_node *bigint;   /* 2^63 literal waiting for a unary minus */
  int             start;    /* a token to return first (EXPR_START), or 0 */
  int             caps;     /* after `caps`: 1 want a name, 2 after a name,
                               3 after a second name with no comma */
  int             caps_prev;/* caps before the latest token */
  parse_loc       caps_loc; /* the name that follows another with no comma */
  const char     *ident;    /* the latest identifier's text */
  ast_node       *expr;     /* parse_expr: the expression read */
  jmp_buf         fatal;    /* where a flex fatal error unwinds to */
} parse_state;

typedef struct parse_str {
  char  *s;               /* decoded bytes, arena-owned, NUL-terminated */
  size_t n;               /* length */
} parse_str;
}

%code provides {
int lex_lex(PARSE_STYPE *lval, PARSE_LTYPE *lloc, yyscan_t scanner);
}

%define api.pure full
%define api.prefix {parse_}
%define api.token.prefix {T_}
%define api.location.type {parse_loc}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%param {yyscan_t scanner}
%parse-param {parse_state *ps}

%code {
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define parse_lex lex_start
static int lex_start(PARSE_STYPE *lval, PARSE_LTYPE *lloc, yyscan_t scanner);

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                        \
  do {                                                                     \
    if (N) {                                                               \
      const parse_loc *f_ = &YYRHSLOC(Rhs, 1), *l_ = &YYRHSLOC(Rhs, N);    \
      (Cur).first_line = f_->first_line;                                   \
      (Cur).first_column = f_->first_column;                               \
      (Cur).first_byte = f_->first_byte;                                   \
      (Cur).head_len = f_->first_line == f_->last_line                     \
                           ? f_->last_column - f_->first_column            \
                           : f_->head_len;                                 \
      (Cur).last_line = l_->last_line;                                     \
      (Cur).last_column = l_->last_column;                                 \
      (Cur).last_byte = l_->last_byte;                                     \
    } else {                                                               \
      const parse_loc *p_ = &YYRHSLOC(Rhs, 0);                             \
      (Cur).first_line = (Cur).last_line = p_->last_line;                  \
      (Cur).first_column = (Cur).last_column = p_->last_column;            \
      (Cur).first_byte = (Cur).last_byte = p_->last_byte;                  \
      (Cur).head_len = 0;                                                  \
    }                                                                      \
  } while (0)

static ast_span span_of(const parse_state *ps, const parse_loc *l);
static const char *when_text(parse_state *ps, const parse_loc *l);
static char *qname_join(parse_state *ps, const char *a, const char *b);
static char *type_join(parse_state *ps, const char *t, const char *a, const char *b);
static void big_check(parse_state *ps, const ast_node *n);
static void parse_error(parse_loc *loc, yyscan_t scanner, parse_state *ps,
                        const char *msg);

#define CTX ps->ctx
/* dst = a new node of kind k spanning loc; stops the parse if out of memory. */
#define NEW(dst, k, loc)                                                   \
  do {                                                                     \
    if (!((dst) = ast_new(CTX, (k), span_of(ps, &(loc))))) YYNOMEM;        \
  } while (0)
#define PUSH(l, item) do { if (ast_push(CTX, &(l), (item))) YYNOMEM; } while (0)
#define BIN(dst, o, x, y, loc)                                             \
  do { NEW(dst, N_BINARY, loc); (dst)->op = (o); (dst)->a = (x); (dst)->b = (y); } while (0)
}

%union {
  ast_node  *node;    /* expressions, targets, declarations */
  ast_list   list;    /* item lists */
  char      *name;    /* identifiers and qualified names */
  parse_str  str;     /* string literals */
  uint64_t   u;       /* INT (may be 2^63), UINT */
  int64_t    i;       /* TOKENS */
  double     d;       /* DOUBLE and the unit literals */
}

%initial-action {
  @$.first_line = @$.last_line = 1;
  @$.first_column = @$.last_column = 1;
  @$.first_byte = @$.last_byte = 0;
  @$.head_len = 0;
}

%token END 0            "end of file"
%token <name> IDENT     "identifier"
%token <str>  STRING    "string"
%token <u>    INT       "integer"
%token <u>    UINT      "unsigned integer"
%token <d>    DOUBLE    "number"
%token <d>    MONEY     "money amount"
%token <d>    PRICE     "price"
%token <d>    DURATION  "duration"
%token <i>    TOKENS    "token count"
%token <d>    FRACTION  "percentage"
%token IMPORT "'import'" MODEL "'model'" REQUEST "'request'" POOL "'pool'"
       BUDGET "'budget'" ROUTE "'route'" TEST "'test'" WHEN "'when'"
       OTHERWISE "'otherwise'" REQUIRE "'require'" FALLBACKS "'fallbacks'"
       SHADOW "'shadow'" THEN "'then'" CHEAPEST "'cheapest'"
       FASTEST "'fastest'" BEST "'best'" SPLIT "'split'" BY "'by'"
       MODELS "'models'" WHERE "'where'" CAPS "'caps'" REQ "'req'"
       EXPECT "'expect'" TRUE "'true'" FALSE "'false'" NULL "'null'"
       IN "'in'" SENSITIVE "'sensitive'" OUTPUT_ESTIMATE "'output_estimate'"
%token EXPR_START "start of an expression"
%token OROR "'||'" ANDAND "'&&'" EQ "'=='" NE "'!='" LE "'<='" GE "'>='"
       ARROW "'->'"

%type <node> decl prop field pool opt_where route_item target arm test_item
             init expr or and rel add mul unary member primary
%type <list> props idents fields route_items chain arms test_items inits
             init_list args arg_list entries entry_list
%type <name> qname fname ftype

%start start

%%

/* A file of declarations; or, for parse_expr, one expression (the lexer
 * returns EXPR_START first). */
start
  : file
  | EXPR_START expr       { ps->expr = $2; }
  ;

file
  : %empty
  | file decl      { if ($2) PUSH(*ps->decls, $2); }
  | file error
  ;

decl
  : import_ STRING  { NEW($$, N_IMPORT, @$); $$->str = $2.s; $$->len = $2.n; }
  | model_ qname '{' props '}'
                   { NEW($$, N_MODEL, @$); $$->name = $2; $$->list = $4; }
  | request_ '{' fields '}'
                   { NEW($$, N_REQUEST, @$); $$->list = $3; }
  | pool_ IDENT '=' pool
                   { NEW($$, N_POOLDEF, @$); $$->name = $2; $$->a = $4; }
  | budget_ IDENT '{' props '}'
                   { NEW($$, N_BUDGET, @$); $$->name = $2; $$->list = $4; }
  | route_ IDENT '{' route_items '}'
                   { NEW($$, N_ROUTE, @$); $$->name = $2; $$->list = $4; }
  | test_ STRING '{' test_items '}'
                   { NEW($$, N_TEST, @$); $$->str = $2.s; $$->len = $2.n; $$->list = $4; }
  ;

qname
  : IDENT                 { $$ = $1; }
  | qname '.' IDENT       { if (!($$ = qname_join(ps, $1, $3))) YYNOMEM; }
  ;

/* A field's name: an identifier, or a word the language reserves, where
 * only a name can stand (after `req.`, declaring a field, in a test's
 * request): `req.model` is the standard field the adapters fill with the
 * model the client asked for. true, false and null stay values, and
 * `sensitive`, which may follow a declaration. */
fname
  : IDENT                 { $$ = $1; }
  | IMPORT                { $$ = (char *)"import"; }
  | MODEL                 { $$ = (char *)"model"; }
  | REQUEST               { $$ = (char *)"request"; }
  | POOL                  { $$ = (char *)"pool"; }
  | BUDGET                { $$ = (char *)"budget"; }
  | ROUTE                 { $$ = (char *)"route"; }
  | TEST                  { $$ = (char *)"test"; }
  | WHEN                  { $$ = (char *)"when"; }
  | OTHERWISE             { $$ = (char *)"otherwise"; }
  | OUTPUT_ESTIMATE       { $$ = (char *)"output_estimate"; }
  | REQUIRE               { $$ = (char *)"require"; }
  | FALLBACKS             { $$ = (char *)"fallbacks"; }
  | SHADOW                { $$ = (char *)"shadow"; }
  | THEN                  { $$ = (char *)"then"; }
  | CHEAPEST              { $$ = (char *)"cheapest"; }
  | FASTEST               { $$ = (char *)"fastest"; }
  | BEST                  { $$ = (char *)"best"; }
  | SPLIT                 { $$ = (char *)"split"; }
  | BY                    { $$ = (char *)"by"; }
  | MODELS                { $$ = (char *)"models"; }
  | WHERE                 { $$ = (char *)"where"; }
  | CAPS                  { $$ = (char *)"caps"; }
  | REQ                   { $$ = (char *)"req"; }
  | EXPECT                { $$ = (char *)"expect"; }
  | IN                    { $$ = (char *)"in"; }
  ;

props
  : %empty                { memset(&$$, 0, sizeof $$); }
  | props prop            { $$ = $1; PUSH($$, $2); }
  | props error           { $$ = $1; }
  ;

prop
  : IDENT expr            { NEW($$, N_PROP, @$); $$->name = $1; $$->a = $2; }
  | CAPS idents           { NEW($$, N_PROP, @$); $$->name = "caps"; $$->list = $2; }
  ;

idents
  : IDENT                 { ast_node *n; NEW(n, N_IDENT, @1); n->name = $1;
                            memset(&$$, 0, sizeof $$); PUSH($$, n); }
  | idents ',' IDENT      { ast_node *n; NEW(n, N_IDENT, @3); n->name = $3;
                            $$ = $1; PUSH($$, n); }
  ;

fields
  : %empty                { memset(&$$, 0, sizeof $$); }
  | fields field          { $$ = $1; PUSH($$, $2); }
  | fields error          { $$ = $1; }
  ;

field
  : fname ':' ftype opt_comma
                          { NEW($$, N_FIELD, @$); $$->name = $1; $$->str = $3;
                            $$->len = strlen($3); }
  | fname ':' ftype SENSITIVE opt_comma
                          { NEW($$, N_FIELD, @$); $$->name = $1; $$->str = $3;
                            $$->len = strlen($3); $$->op = 1; }
  ;

ftype
  : IDENT
  | IDENT '(' IDENT ',' IDENT ')'
                          { $$ = type_join(ps, $1, $3, $5); }
  | IDENT '(' IDENT ')'   { $$ = type_join(ps, $1, $3, NULL); }
  ;

opt_comma : %empty | ',' ;

pool
  : MODELS opt_where      { NEW($$, N_POOL, @$); $$->a = $2; }
  | IDENT opt_where       { NEW($$, N_POOL, @$); $$->name = $1; $$->a = $2; }
  ;

opt_where
  : %empty                { $$ = NULL; }
  | WHERE expr            { $$ = $2; }
  ;

route_items
  : %empty                { memset(&$$, 0, sizeof $$); }
  | route_items route_item { $$ = $1; PUSH($$, $2); }
  | route_items error     { $$ = $1; }
  ;

route_item
  : fallbacks_ expr        { NEW($$, N_FALLBACKS, @$); $$->a = $2; }
  | output_estimate_ expr  { NEW($$, N_PROP, @$); $$->name = (char *)"output_estimate";
                            $$->a = $2; }
  | require_ expr          { NEW($$, N_REQUIRE, @$); $$->a = $2; }
  | when_ expr ARROW chain { NEW($$, N_WHEN, @$); $$->a = $2; $$->list = $4;
                            if (!($$->text = when_text(ps, &@2))) YYNOMEM; }
  | otherwise_ ARROW chain { NEW($$, N_OTHERWISE, @$); $$->list = $3; }
  | shadow_ qname          { NEW($$, N_SHADOW, @$); $$->name = $2; }
  | shadow_ qname FRACTION { NEW($$, N_SHADOW, @$); $$->name = $2;
                            NEW($$->a, N_FRACTION, @3); $$->a->lit.d = $3; }
  ;

chain
  : target                { memset(&$$, 0, sizeof $$); PUSH($$, $1); }
  | chain ',' THEN target { $$ = $1; PUSH($$, $4); }
  | chain ',' SHADOW qname
                          { ast_node *n; NEW(n, N_SHADOW, @3); n->span = ast_join(n->span, span_of(ps, &@4));
                            n->name = $4; $$ = $1; PUSH($$, n); }
  | chain ',' SHADOW qname FRACTION
                          { ast_node *n; NEW(n, N_SHADOW, @3); n->span = ast_join(n->span, span_of(ps, &@4));
                            n->name = $4; NEW(n->a, N_FRACTION, @5); n->a->lit.d = $5;
                            $$ = $1; PUSH($$, n); }
  ;

target
  : qname                 { NEW($$, N_MODELREF, @$); $$->name = $1; }
  | CHEAPEST '(' pool ')' { NEW($$, N_SELECT, @$); $$->op = ORD_CHEAPEST; $$->a = $3; }
  | FASTEST '(' pool ')'  { NEW($$, N_SELECT, @$); $$->op = ORD_FASTEST; $$->a = $3; }
  | BEST '(' pool ')'     { NEW($$, N_SELECT, @$); $$->op = ORD_BEST; $$->a = $3; }
  | SPLIT '{' arms opt_comma '}' BY expr
                          { NEW($$, N_SPLIT, @$); $$->list = $3; $$->a = $7; }
  ;

arms
  : arm                   { memset(&$$, 0, sizeof $$); PUSH($$, $1); }
  | arms ',' arm          { $$ = $1; PUSH($$, $3); }
  ;

arm
  : target ':' expr       { NEW($$, N_ARM, @$); $$->a = $1; $$->b = $3; }
  ;

test_items
  : %empty                { memset(&$$, 0, sizeof $$); }
  | test_items test_item  { $$ = $1; PUSH($$, $2); }
  | test_items error      { $$ = $1; }
  ;

test_item
  : route_ IDENT           { NEW($$, N_TROUTE, @$); $$->name = $2; }
  | req_ '{' inits '}'     { NEW($$, N_TREQ, @$); $$->list = $3; }
  | expect_ expr           { NEW($$, N_EXPECT, @$); $$->a = $2; }
  | IDENT STRING           { NEW($$, N_TSTATE, @$); $$->name = $1; $$->str = $2.s; $$->len = $2.n; }
  ;

inits
  : %empty                { memset(&$$, 0, sizeof $$); }
  | init_list opt_comma   { $$ = $1; }
  ;

init_list
  : init                  { memset(&$$, 0, sizeof $$); PUSH($$, $1); }
  | init_list ',' init    { $$ = $1; PUSH($$, $3); }
  ;

init
  : fname ':' expr        { NEW($$, N_INIT, @$); $$->name = $1; $$->a = $3; }
  ;

/* An item's keyword: after a syntax error, reaching one means the parser
 * is back in step, so the next error is worth reporting. */
budget_ : BUDGET { yyerrok; } ;
expect_ : EXPECT { yyerrok; } ;
fallbacks_ : FALLBACKS { yyerrok; } ;
import_ : IMPORT { yyerrok; } ;
model_ : MODEL { yyerrok; } ;
otherwise_ : OTHERWISE { yyerrok; } ;
output_estimate_ : OUTPUT_ESTIMATE { yyerrok; } ;
pool_ : POOL { yyerrok; } ;
req_ : REQ { yyerrok; } ;
request_ : REQUEST { yyerrok; } ;
require_ : REQUIRE { yyerrok; } ;
route_ : ROUTE { yyerrok; } ;
shadow_ : SHADOW { yyerrok; } ;
test_ : TEST { yyerrok; } ;
when_ : WHEN { yyerrok; } ;

/* ---- expressions, CEL precedence ---- */

expr
  : or
  | or '?' expr ':' expr  { NEW($$, N_COND, @$); $$->a = $1; $$->b = $3; $$->c = $5; }
  ;

or
  : and
  | or OROR and           { BIN($$, OP_OR, $1, $3, @$); }
  ;

and
  : rel
  | and ANDAND rel        { BIN($$, OP_AND, $1, $3, @$); }
  ;

rel
  : add
  | rel '<' add           { BIN($$, OP_LT, $1, $3, @$); }
  | rel LE add            { BIN($$, OP_LE, $1, $3, @$); }
  | rel '>' add           { BIN($$, OP_GT, $1, $3, @$); }
  | rel GE add            { BIN($$, OP_GE, $1, $3, @$); }
  | rel EQ add            { BIN($$, OP_EQ, $1, $3, @$); }
  | rel NE add            { BIN($$, OP_NE, $1, $3, @$); }
  | rel IN add            { BIN($$, OP_IN, $1, $3, @$); }
  ;

add
  : mul
  | add '+' mul           { BIN($$, OP_ADD, $1, $3, @$); }
  | add '-' mul           { BIN($$, OP_SUB, $1, $3, @$); }
  ;

mul
  : unary                 { big_check(ps, $1); $$ = $1; }
  | mul '*' unary         { big_check(ps, $3); BIN($$, OP_MUL, $1, $3, @$); }
  | mul '/' unary         { big_check(ps, $3); BIN($$, OP_DIV, $1, $3, @$); }
  | mul '%' unary         { big_check(ps, $3); BIN($$, OP_MOD, $1, $3, @$); }
  ;

unary
  : member
  | '!' unary             { big_check(ps, $2); NEW($$, N_UNARY, @$); $$->op = OP_NOT; $$->a = $2; }
  | '-' unary             {
      if ($2 == ps->bigint) {   /* -9223372036854775808: INT64_MIN */
        ps->bigint = NULL;
        $$ = $2;
        $$->span = span_of(ps, &@$);
      } else {
        NEW($$, N_UNARY, @$); $$->op = OP_NEG; $$->a = $2;
      }
    }
  ;

member
  : primary
  | member '.' fname      { big_check(ps, $1); NEW($$, N_SELECTOR, @$); $$->a = $1; $$->name = $3; }
  | member '.' fname '(' args ')'
                          { big_check(ps, $1); NEW($$, N_CALL, @$); $$->a = $1; $$->name = $3; $$->list = $5; }
  | member '[' expr ']'   { big_check(ps, $1); NEW($$, N_INDEX, @$); $$->a = $1; $$->b = $3; }
  ;

primary
  : IDENT                 { NEW($$, N_IDENT, @$); $$->name = $1; }
  | IDENT '(' args ')'    { NEW($$, N_CALL, @$); $$->name = $1; $$->list = $3; }
  | '(' expr ')'          { $$ = $2; }
  | '[' args ']'          { NEW($$, N_LIST, @$); $$->list = $2; }
  | '{' entries '}'       { NEW($$, N_MAP, @$); $$->list = $2; }
  | REQ                   { NEW($$, N_IDENT, @$); $$->name = "req"; }
  | BUDGET                { NEW($$, N_IDENT, @$); $$->name = "budget"; }
  | FALLBACKS             { NEW($$, N_IDENT, @$); $$->name = "fallbacks"; }
  | INT                   { NEW($$, N_INT, @$); $$->lit.u = $1;
                            if ($1 > (uint64_t)INT64_MAX) ps->bigint = $$; }
  | UINT                  { NEW($$, N_UINT, @$); $$->lit.u = $1; }
  | DOUBLE                { NEW($$, N_DOUBLE, @$); $$->lit.d = $1; }
  | STRING                { NEW($$, N_STRING, @$); $$->str = $1.s; $$->len = $1.n; }
  | TRUE                  { NEW($$, N_BOOL, @$); $$->lit.b = 1; }
  | FALSE                 { NEW($$, N_BOOL, @$); $$->lit.b = 0; }
  | NULL                  { NEW($$, N_NULL, @$); }
  | MONEY                 { NEW($$, N_MONEY, @$); $$->lit.d = $1; }
  | PRICE                 { NEW($$, N_PRICE, @$); $$->lit.d = $1; }
  | DURATION              { NEW($$, N_DURATION, @$); $$->lit.d = $1; }
  | TOKENS                { NEW($$, N_TOKENS, @$); $$->lit.i = $1; }
  | FRACTION              { NEW($$, N_FRACTION, @$); $$->lit.d = $1; }
  ;

args
  : %empty                { memset(&$$, 0, sizeof $$); }
  | arg_list opt_comma    { $$ = $1; }
  ;

arg_list
  : expr                  { memset(&$$, 0, sizeof $$); PUSH($$, $1); }
  | arg_list ',' expr     { $$ = $1; PUSH($$, $3); }
  ;

entries
  : %empty                { memset(&$$, 0, sizeof $$); }
  | entry_list opt_comma  { $$ = $1; }
  ;

entry_list
  : expr ':' expr         { memset(&$$, 0, sizeof $$); PUSH($$, $1); PUSH($$, $3); }
  | entry_list ',' expr ':' expr
                          { $$ = $1; PUSH($$, $3); PUSH($$, $5); }
  ;

%%

#include "lexer.h"

/* The lexer, after the start token parse_expr asks for. */
static int lex_start(PARSE_STYPE *lval, PARSE_LTYPE *lloc, yyscan_t scanner) {
  parse_state *ps = lex_get_extra(scanner);
  if (ps->start) {
    int t = ps->start;
    ps->start = 0;
    lloc->first_line = lloc->last_line = 1;
    lloc->first_column = lloc->last_column = 1;
    lloc->first_byte = lloc->last_byte = 0;
    lloc->head_len = 0;
    return t;
  }
  int t = lex_lex(lval, lloc, scanner);
  /* What the error messages want to know of the tokens before. */
  ps->caps_prev = ps->caps;
  if (t == T_IDENT) ps->ident = lval->name;
  if (t == T_CAPS) ps->caps = 1;
  else if (t == T_IDENT && ps->caps == 1) ps->caps = 2;
  else if (t == T_IDENT && ps->caps == 2) { ps->caps = 3; ps->caps_loc = *lloc; }
  else if (t == T_IDENT && ps->caps == 3) ps->caps = 3;   /* the first such name counts */
  else if (t == ',' && ps->caps == 2) ps->caps = 1;
  else ps->caps = 0;
  return t;
}

static ast_span span_of(const parse_state *ps, const parse_loc *l) {
  ast_span s;
  s.file = ps->file;
  s.line = l->first_line;
  s.col = l->first_column;
  s.len = l->first_line == l->last_line ? l->last_column - l->first_column
                                        : l->head_len;
  if (s.len < 1) s.len = 1;
  s.more = l->last_line > l->first_line;
  return s;
}

/* Reports the literal 9223372036854775808 when it turns out not to be the
 * operand of a unary minus. */
static void big_check(parse_state *ps, const ast_node *n) {
  if (n && n == ps->bigint) {
    ps->bigint = NULL;
    diag_error(ps->ctx, n->span, "integer literal 9223372036854775808 is too large");
  }
}

/* "map(string, int)": a field type with parameters, as sema reads it. */
static char *type_join(parse_state *ps, const char *t, const char *a, const char *b) {
  size_t n = strlen(t) + strlen(a) + (b ? strlen(b) : 0) + 5;
  char *s = ast_alloc(ps->ctx, n);
  if (s && b) snprintf(s, n, "%s(%s, %s)", t, a, b);
  else if (s) snprintf(s, n, "%s(%s)", t, a);
  return s;
}

static char *qname_join(parse_state *ps, const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  char *s = ast_alloc(ps->ctx, na + nb + 2);
  if (!s) return NULL;
  memcpy(s, a, na);
  s[na] = '.';
  memcpy(s + na + 1, b, nb + 1);
  return s;
}

/* Copies a string literal starting at p (a quote, or r/R then a quote)
 * and returns where it ends; strings keep their spaces and '#'. */
static const char *copy_string(const char *p, const char *end, char **out) {
  int raw = 0, triple;
  char q;
  if (*p == 'r' || *p == 'R') { raw = 1; *(*out)++ = *p++; }
  q = *p;
  triple = end - p >= 3 && p[1] == q && p[2] == q;
  for (int i = 0; i < (triple ? 3 : 1); i++) *(*out)++ = *p++;
  while (p < end) {
    if (!raw && *p == '\\' && p + 1 < end) {
      *(*out)++ = *p++;
      *(*out)++ = *p++;
      continue;
    }
    if (*p == q && (!triple || (end - p >= 3 && p[1] == q && p[2] == q))) {
      for (int i = 0; i < (triple ? 3 : 1); i++) *(*out)++ = *p++;
      return p;
    }
    *(*out)++ = *p++;
  }
  return p;
}

/* The source text of a when-condition, with every run of whitespace and
 * comments replaced by one space (string literals are kept as written). */
static const char *when_text(parse_state *ps, const parse_loc *l) {
  const char *p = ps->file->text + l->first_byte;
  const char *end = ps->file->text + l->last_byte;
  char *buf = ast_alloc(ps->ctx, (size_t)(end - p) + 1), *o = buf;
  int gap = 0;
  if (!buf) return NULL;
  while (p < end) {
    char c = *p;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      gap = 1;
      p++;
    } else if (c == '#') {
      gap = 1;
      while (p < end && *p != '\n') p++;
    } else {
      if (gap && o > buf) *o++ = ' ';
      gap = 0;
      if (c == '"' || c == '\'' ||
          ((c == 'r' || c == 'R') && p + 1 < end && (p[1] == '"' || p[1] == '\'') &&
           (p == ps->file->text + l->first_byte ||
            !(p[-1] == '_' || (p[-1] >= '0' && p[-1] <= '9') ||
              ((p[-1] | 0x20) >= 'a' && (p[-1] | 0x20) <= 'z')))))
        p = copy_string(p, end, &o);
      else
        *o++ = *p++;
    }
  }
  *o = '\0';
  return buf;
}

/* How a token is named in messages: as the user writes it. */
static const char *tok_name(yysymbol_kind_t k) {
  switch (k) {
  case YYSYMBOL_INT: case YYSYMBOL_UINT: case YYSYMBOL_DOUBLE: return "number";
  default: return yysymbol_name(k);
  }
}

/* Groups that stand for many tokens in "expected ..." lists. */
static const char *const expr_start[] = {
  "identifier", "number", "string", "'true'",
  "'false'", "'null'", "money amount", "price", "duration", "token count",
  "percentage", "'req'", "'budget'", "'fallbacks'", "'('", "'['", "'{'", "'!'", "'-'", NULL
};
static const char *const operators[] = {
  "'||'", "'&&'", "'=='", "'!='", "'<'", "'<='", "'>'", "'>='", "'in'", "'+'",
  "'-'", "'*'", "'/'", "'%'", "'?'", "'.'", "'['", "'('", NULL
};
static const char *const decl_start[] = {
  "'import'", "'model'", "'request'", "'pool'", "'budget'", "'route'", "'test'", NULL
};
static const char *const item_start[] = {
  "'fallbacks'", "'output_estimate'", "'require'", "'when'", "'otherwise'", "'shadow'", NULL
};

static int in_set(const char *name, const char *const *set) {
  for (; *set; set++)
    if (strcmp(name, *set) == 0) return 1;
  return 0;
}

/* Replaces the members of `set` in names[] by `label` when every name in
 * `trigger` is there (the group is really what is expected). The label
 * goes first when `front`, else where the group's first member was. */
static int collapse(const char **names, int n, const char *const *set,
                    const char *const *trigger, const char *label, int front) {
  int i, j, hits = 0;
  for (; *trigger; trigger++) {
    for (i = 0; i < n; i++)
      if (strcmp(names[i], *trigger) == 0) break;
    if (i == n) return n;
  }
  for (i = j = 0; i < n; i++) {
    if (!in_set(names[i], set)) names[j++] = names[i];
    else if (!hits++ && !front) names[j++] = label;
  }
  if (front) {
    memmove(names + 1, names, (size_t)j * sizeof *names);
    names[0] = label;
    j++;
  }
  return j;
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, yyscan_t scanner,
                                 parse_state *ps) {
  static const char *const t_expr[] = { "'!'", "number", NULL };
  static const char *const t_ops[] = { "'+'", "'*'", NULL };
  yysymbol_kind_t exp[YYNTOKENS];
  const char *names[YYNTOKENS];
  yysymbol_kind_t la = yypcontext_token(yyctx);
  int n = yypcontext_expected_tokens(yyctx, exp, YYNTOKENS), m = 0, i;
  char buf[512];
  size_t len;
  (void)scanner;
  if (n < 0) return n;
  for (i = 0; i < n; i++)
    if ((exp[i] != YYSYMBOL_YYEOF || n == 1) && exp[i] != YYSYMBOL_EXPR_START)
      names[m++] = tok_name(exp[i]);   /* EXPR_START is never written */
  if (la == YYSYMBOL_YYEOF) {
    /* At the end of the file the useful news is what is left open. */
    int k = 0;
    for (i = 0; i < m; i++)
      if (!strcmp(names[i], "'}'") || !strcmp(names[i], "')'") || !strcmp(names[i], "']'"))
        names[k++] = names[i];
    if (k) m = k;
  }
  m = collapse(names, m, expr_start, t_expr, "expression", 1);
  m = collapse(names, m, operators, t_ops, "operator", 1);
  m = collapse(names, m, decl_start, decl_start, "declaration", 0);
  m = collapse(names, m, item_start, item_start, "route item", 0);
  /* Mistakes with a known fix say what to write. */
  if (ps->caps_prev == 3) {
    diag_error(ps->ctx, span_of(ps, &ps->caps_loc),
               "capabilities are separated by commas: write caps a, b (a comma is missing "
               "before this name)");
    return ps->ctx->nomem ? YYENOMEM : 0;
  }
  const char *fix = NULL;
  if (la == YYSYMBOL_IDENT && ps->ident && !strcmp(ps->ident, "and")) fix = "write && for 'and'";
  else if (la == YYSYMBOL_IDENT && ps->ident && !strcmp(ps->ident, "or")) fix = "write || for 'or'";
  else if (la == YYSYMBOL_IDENT && ps->ident && !strcmp(ps->ident, "not")) fix = "write ! for 'not'";
  else if (!strcmp(tok_name(la), "'='")) fix = "write == to compare (= is not an operator)";
  else if (!strcmp(tok_name(la), "':'"))
    fix = "properties are written without ':' (provider \"x\", input $1/Mtok)";
  len = (size_t)snprintf(buf, sizeof buf, "unexpected %s",
                         la == YYSYMBOL_YYEMPTY ? "token" : tok_name(la));
  if (m > 0 && m <= 5) {
    for (i = 0; i < m && len < sizeof buf; i++)
      len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s",
                              i == 0 ? ", expected " : i == m - 1 ? " or " : ", ",
                              names[i]);
  }
  if (fix && len < sizeof buf) snprintf(buf + len, sizeof buf - len, "; %s", fix);
  diag_error(ps->ctx, span_of(ps, yypcontext_location(yyctx)), "%s", buf);
  return ps->ctx->nomem ? YYENOMEM : 0;
}

/* Bison calls this only for exhaustion: our allocations or its stack. */
static void parse_error(parse_loc *loc, yyscan_t scanner, parse_state *ps,
                        const char *msg) {
  (void)scanner;
  (void)msg;
  if (!ps->ctx->nomem)
    diag_error(ps->ctx, span_of(ps, loc), "nesting is too deep");
}

/* The first node nested deeper than AST_MAX_DEPTH under n (at depth d), or
 * NULL. The walk stops at the limit, so its own recursion is bounded; the
 * passes after the parser recurse freely over what it lets through. */
static const ast_node *too_deep(const ast_node *n, int d) {
  const ast_node *kids[3];
  if (!n) return NULL;
  if (d > AST_MAX_DEPTH) return n;
  kids[0] = n->a; kids[1] = n->b; kids[2] = n->c;
  for (int i = 0; i < 3; i++) {
    const ast_node *t = too_deep(kids[i], d + 1);
    if (t) return t;
  }
  for (int i = 0; i < n->list.n; i++) {
    const ast_node *t = too_deep(n->list.v[i], d + 1);
    if (t) return t;
  }
  return NULL;
}

/* Reports (once per declaration) nesting past AST_MAX_DEPTH in the
 * declarations from index `from` on. */
static void check_depth(ast_ctx *ctx, const ast_list *decls, int from) {
  for (int i = from; i < decls->n; i++) {
    const ast_node *t = too_deep(decls->v[i], 1);
    if (t)
      diag_error(ctx, t->span, "nesting is too deep: more than %d levels", AST_MAX_DEPTH);
  }
}

static int parse_any(ast_ctx *ctx, const src_file *file, ast_list *decls, ast_node **expr) {
  parse_state *ps;
  yyscan_t scanner = NULL;
  char *copy;
  int before = ctx->nerrors, r;

  if (file->len > AST_MAX_SOURCE) {
    ast_span sp = { file, 1, 1, 1, 0 };
    diag_error(ctx, sp, "file is larger than the limit of %u bytes", AST_MAX_SOURCE);
    return ctx->nomem ? -1 : 1;
  }
  int first = decls->n;
  /* flex scans in place and wants two NULs at the end. */
  ps = calloc(1, sizeof *ps);
  copy = malloc(file->len + 2);
  if (!ps || !copy || lex_lex_init_extra(ps, &scanner)) {
    free(ps);
    free(copy);
    ctx->nomem = 1;
    return -1;
  }
  memcpy(copy, file->text, file->len);
  copy[file->len] = copy[file->len + 1] = '\0';
  ps->ctx = ctx;
  ps->file = file;
  ps->decls = decls;
  ps->line = ps->col = 1;
  if (expr) ps->start = T_EXPR_START;
  if (setjmp(ps->fatal)) {
    /* A flex fatal error: only running out of memory in the two set-up
     * calls below can cause one. */
    ctx->nomem = 1;
    r = 2;
  } else {
    /* Grow flex's buffer stack now (it takes two calls: one slot, then
     * more), so that no allocation after the buffer's own can fail and
     * strand it. */
    lex__switch_to_buffer(NULL, scanner);
    lex__switch_to_buffer(NULL, scanner);
    lex__scan_buffer(copy, file->len + 2, scanner);
    r = parse_parse(scanner, ps);
  }
  lex_lex_destroy(scanner);
  free(copy);
  if (expr) {
    *expr = ps->expr;
    if (ps->expr && !ctx->nomem && ast_push(ctx, decls, ps->expr)) ctx->nomem = 1;
  }
  free(ps);
  if (ctx->nomem || (r == 2 && ctx->nerrors == before)) { ctx->nomem = 1; return -1; }
  check_depth(ctx, decls, first);
  if (expr && !*expr && ctx->nerrors == before) {   /* empty text */
    ast_span sp = {file, 1, 1, 1, 0};
    diag_error(ctx, sp, "expected an expression");
  }
  return ctx->nerrors - before;
}

int parse_file(ast_ctx *ctx, const src_file *file, ast_list *decls) {
  return parse_any(ctx, file, decls, NULL);
}

int parse_expr(ast_ctx *ctx, const src_file *file, ast_list *keep, ast_node **expr) {
  *expr = NULL;
  return parse_any(ctx, file, keep, expr);
}
