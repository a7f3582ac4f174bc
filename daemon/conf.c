/*
 * daemon/conf.c - the carpd.conf parser.
 *
 * A hand-written lexer and recursive-descent parser in the spirit of OpenBGPD's
 * parse.y. The input is a byte buffer with an explicit length: NUL bytes, CRLF,
 * overlong tokens and unterminated strings or blocks are reported, never trusted.
 * A statement is the list of tokens up to the end of the line (or a brace), so
 * recovering from a bad statement is simply moving on to the next one; that is
 * what lets one run report every problem of a file.
 *
 * Errors are gathered with their line numbers and sorted before they are handed
 * back, because some checks (duplicate addresses, a vhid without address) can only
 * run after the statements that follow the offending one have been read.
 */
#include "daemon/conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Longest word or string accepted; no valid value comes close, so anything longer
 * is an error rather than silently cut. */
#define TOKEN_MAX 1023
/* A statement never needs more than 4 tokens; one extra is kept to name it in the
 * "unexpected ..." message. */
#define STMT_MAX_TOKENS 6
/* A file larger than this is not a configuration file. */
#define CONF_MAX_FILE_SIZE (16u * 1024 * 1024)
#define DEFAULT_STATE_DIR  "/var/lib/carpd"

enum tok_type {
	T_EOF,
	T_NL,
	T_WORD,
	T_STRING,
	T_LBRACE,
	T_RBRACE,
};

struct token {
	enum tok_type type;
	int line;
	size_t len;
	char text[TOKEN_MAX + 1];
};

struct stmt {
	struct token tok[STMT_MAX_TOKENS];
	size_t ntok;	    /* tokens stored (at most STMT_MAX_TOKENS) */
	size_t nextra;	    /* tokens seen beyond STMT_MAX_TOKENS */
	enum tok_type term; /* T_NL, T_EOF, T_LBRACE or T_RBRACE */
	int term_line;
};

/* Statement keywords; the index is also the slot in the "seen at line" tables used
 * to detect duplicates. */
enum kw {
	KW_CONTROL,
	KW_CONTROL_RO,
	KW_PREEMPT,
	KW_FOLLOW_DEMOTION,
	KW_HOSTID,
	KW_NOTIFY,
	KW_NOTIFY_USER,
	KW_STATE_DIR,
	KW_VHID,
	KW_PFSYNC,
	KW_ADDRESS,
	KW_ADVBASE,
	KW_ADVSKEW,
	KW_PASSWORD,
	KW_PFSENSE_PASSWORD,
	KW_PEER,
	KW_PEER6,
	KW_SYNCPEER,
	KW_VERSION,
	KW_DEFER,
	KW_ACTIVITY_MARK,
	KW__COUNT,
	KW_NONE = -1,
};

enum ctx { CTX_GLOBAL, CTX_VHID, CTX_PFSYNC };

static const struct {
	const char *name;
	enum ctx ctx;
} keywords[KW__COUNT] = {
	[KW_CONTROL] = {"control", CTX_GLOBAL},
	[KW_CONTROL_RO] = {"control-ro", CTX_GLOBAL},
	[KW_PREEMPT] = {"preempt", CTX_GLOBAL},
	[KW_FOLLOW_DEMOTION] = {"follow-demotion", CTX_GLOBAL},
	[KW_HOSTID] = {"hostid", CTX_GLOBAL},
	[KW_NOTIFY] = {"notify", CTX_GLOBAL},
	[KW_NOTIFY_USER] = {"notify-user", CTX_GLOBAL},
	[KW_STATE_DIR] = {"state-dir", CTX_GLOBAL},
	[KW_VHID] = {"vhid", CTX_GLOBAL},
	[KW_PFSYNC] = {"pfsync", CTX_GLOBAL},
	[KW_ADDRESS] = {"address", CTX_VHID},
	[KW_ADVBASE] = {"advbase", CTX_VHID},
	[KW_ADVSKEW] = {"advskew", CTX_VHID},
	[KW_PASSWORD] = {"password", CTX_VHID},
	[KW_PFSENSE_PASSWORD] = {"pfsense-password", CTX_VHID},
	[KW_PEER] = {"peer", CTX_VHID},
	[KW_PEER6] = {"peer6", CTX_VHID},
	[KW_SYNCPEER] = {"syncpeer", CTX_PFSYNC},
	[KW_VERSION] = {"version", CTX_PFSYNC},
	[KW_DEFER] = {"defer", CTX_PFSYNC},
	[KW_ACTIVITY_MARK] = {"activity-mark", CTX_PFSYNC},
};

static const char *const ctx_name[] = {"global", "vhid", "pfsync"};

/* Parser-side facts about one vhid block that the final checks need. */
struct vmeta {
	int kw_line[KW__COUNT];
	int addr_line[CARP_MAX_ADDRS];
	bool too_many_addrs;
};

struct perr {
	int line;
	char msg[sizeof(((struct conf_errors *)0)->msg[0])];
};

struct parser {
	const char *name;
	const char *buf;
	size_t len;
	size_t pos;
	int line;
	int badchar_line; /* last line an invalid byte was reported on: once per line */

	struct conf *conf;
	struct vmeta *meta; /* parallel to conf->vhids */
	size_t vcap;

	int global_line[KW__COUNT];
	struct conf_vhid scratch; /* block body of a rejected vhid header */
	struct vmeta scratch_meta;
	struct conf_pfsync scratch_pfsync;
	int pfsync_kw_line[KW__COUNT];
	int scratch_pfsync_kw_line[KW__COUNT];

	struct stmt st;
	bool replay; /* st holds a statement the top level must handle next */

	struct perr errs[CONF_MAX_ERRORS];
	size_t nerrs;
	bool stopped; /* too many errors: stop parsing */
};

/* ---- errors ---------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void perror_at(struct parser *p, int line,
							    const char *fmt, ...)
{
	size_t size = sizeof(p->errs[0].msg);
	va_list ap;
	char *msg;
	int n;

	if (p->stopped)
		return;
	if (p->nerrs == CONF_MAX_ERRORS - 1) {
		/* The last slot says that the list is incomplete. */
		snprintf(p->errs[p->nerrs].msg, sizeof(p->errs[0].msg),
			 "%s:%d: too many errors, giving up", p->name, line);
		p->errs[p->nerrs++].line = -1;
		p->stopped = true;
		return;
	}
	/* a very long file name leaves no room for the message: it is cut, never overrun */
	msg = p->errs[p->nerrs].msg;
	n = snprintf(msg, size, "%s:%d: ", p->name, line);
	if (n >= 0 && (size_t)n < size - 1) {
		va_start(ap, fmt);
		vsnprintf(msg + n, size - (size_t)n, fmt, ap);
		va_end(ap);
	}
	p->errs[p->nerrs++].line = line;
}

__attribute__((format(printf, 2, 3))) static void append_err(struct conf_errors *errs,
							     const char *fmt, ...)
{
	va_list ap;

	if (errs->count >= CONF_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(errs->msg[errs->count++], sizeof(errs->msg[0]), fmt, ap);
	va_end(ap);
}

/* Stable sort by line (insertion sort: at most 64 entries); the "giving up" entry
 * (line -1) stays last. */
static void flush_errors(struct parser *p, struct conf_errors *errs)
{
	for (size_t i = 1; i < p->nerrs; i++) {
		struct perr tmp = p->errs[i];
		unsigned key = (unsigned)tmp.line; /* -1 sorts last */
		size_t j = i;
		while (j > 0 && (unsigned)p->errs[j - 1].line > key) {
			p->errs[j] = p->errs[j - 1];
			j--;
		}
		p->errs[j] = tmp;
	}
	for (size_t i = 0; i < p->nerrs && errs->count < CONF_MAX_ERRORS; i++) {
		memcpy(errs->msg[errs->count], p->errs[i].msg, sizeof(errs->msg[0]));
		errs->count++;
	}
}

/* A token as it may appear inside a message: printable, at most 40 bytes. */
static const char *show(const struct token *t, char *buf, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < t->len && o + 1 < len; i++) {
		unsigned char c = (unsigned char)t->text[i];
		if (o >= 40 && i + 1 < t->len) {
			if (o + 4 < len) {
				memcpy(buf + o, "...", 3);
				o += 3;
			}
			break;
		}
		buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	buf[o] = '\0';
	return buf;
}

/* ---- lexer ----------------------------------------------------------------- */

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_bad(unsigned char c)
{
	return (c < 0x20 && c != '\n' && !is_space(c)) || c == 0x7f;
}

static bool ends_word(unsigned char c)
{
	return is_space(c) || is_bad(c) || c == '\n' || c == '#' || c == '"' || c == '{' ||
	       c == '}';
}

static void bad_byte(struct parser *p, unsigned char c, const char *where)
{
	if (p->badchar_line == p->line)
		return;
	p->badchar_line = p->line;
	if (c == 0)
		perror_at(p, p->line, "NUL byte %s", where);
	else
		perror_at(p, p->line, "invalid control character 0x%02x %s", c, where);
}

static void lex_string(struct parser *p, struct token *t)
{
	bool too_long = false;

	t->type = T_STRING;
	p->pos++; /* opening quote */
	for (;;) {
		if (p->pos >= p->len || p->buf[p->pos] == '\n') {
			/* The newline is left for the statement reader. */
			perror_at(p, t->line, "unterminated string (a string ends on its line)");
			break;
		}
		unsigned char c = (unsigned char)p->buf[p->pos++];
		if (c == '"')
			break;
		if (c == '\\' && p->pos < p->len &&
		    (p->buf[p->pos] == '"' || p->buf[p->pos] == '\\')) {
			c = (unsigned char)p->buf[p->pos++];
		} else if (c == 0 || is_bad(c)) {
			bad_byte(p, c, "in string");
			continue;
		}
		if (t->len >= TOKEN_MAX) {
			if (!too_long)
				perror_at(p, t->line, "string too long (at most %d bytes)",
					  TOKEN_MAX);
			too_long = true;
			continue;
		}
		t->text[t->len++] = (char)c;
	}
	t->text[t->len] = '\0';
}

static void next_token(struct parser *p, struct token *t)
{
	t->len = 0;
	t->text[0] = '\0';
	for (;;) {
		if (p->pos >= p->len) {
			t->type = T_EOF;
			t->line = p->line;
			return;
		}
		unsigned char c = (unsigned char)p->buf[p->pos];
		if (is_space(c)) {
			p->pos++;
		} else if (is_bad(c)) {
			bad_byte(p, c, "in file");
			p->pos++;
		} else if (c == '#') {
			/* Comments may contain anything, NUL bytes included. */
			while (p->pos < p->len && p->buf[p->pos] != '\n')
				p->pos++;
		} else {
			break;
		}
	}
	t->line = p->line;
	unsigned char c = (unsigned char)p->buf[p->pos];
	switch (c) {
	case '\n':
		p->pos++;
		p->line++;
		t->type = T_NL;
		return;
	case '{':
		p->pos++;
		t->type = T_LBRACE;
		return;
	case '}':
		p->pos++;
		t->type = T_RBRACE;
		return;
	case '"':
		lex_string(p, t);
		return;
	default:
		break;
	}
	t->type = T_WORD;
	bool too_long = false;
	while (p->pos < p->len && !ends_word((unsigned char)p->buf[p->pos])) {
		if (t->len >= TOKEN_MAX) {
			if (!too_long)
				perror_at(p, t->line, "word too long (at most %d bytes)",
					  TOKEN_MAX);
			too_long = true;
			p->pos++;
			continue;
		}
		t->text[t->len++] = p->buf[p->pos++];
	}
	t->text[t->len] = '\0';
}

/* Reads the tokens of one statement, up to the end of the line or a brace. */
static void read_stmt(struct parser *p, struct stmt *st)
{
	struct token extra;

	st->ntok = 0;
	st->nextra = 0;
	for (;;) {
		struct token *t = st->ntok < STMT_MAX_TOKENS ? &st->tok[st->ntok] : &extra;
		next_token(p, t);
		if (t->type == T_WORD || t->type == T_STRING) {
			if (st->ntok < STMT_MAX_TOKENS)
				st->ntok++;
			else
				st->nextra++;
			continue;
		}
		st->term = t->type;
		st->term_line = t->line;
		return;
	}
}

/* Skips a block that cannot be understood, up to its matching '}'. */
static void skip_block(struct parser *p, int open_line)
{
	struct token t;
	unsigned depth = 1;

	for (;;) {
		next_token(p, &t);
		if (t.type == T_LBRACE) {
			depth++;
		} else if (t.type == T_RBRACE) {
			if (--depth == 0)
				return;
		} else if (t.type == T_EOF) {
			perror_at(p, open_line, "block opened here is not closed (missing '}')");
			return;
		}
	}
}

/* After a block's '}', only a comment may follow on the line. */
static void after_rbrace(struct parser *p, int line)
{
	struct token t;
	bool reported = false;

	for (;;) {
		next_token(p, &t);
		if (t.type == T_NL || t.type == T_EOF)
			return;
		if (!reported) {
			char b[48];
			if (t.type == T_LBRACE)
				perror_at(p, line, "unexpected '{' after '}'");
			else if (t.type == T_RBRACE)
				perror_at(p, line, "unexpected '}'");
			else
				perror_at(p, line, "unexpected \"%s\" after '}'",
					  show(&t, b, sizeof(b)));
			reported = true;
		}
	}
}

/* ---- value parsing --------------------------------------------------------- */

static enum kw kw_lookup(const struct token *t)
{
	if (t->type != T_WORD)
		return KW_NONE;
	for (int i = 0; i < KW__COUNT; i++)
		if (!strcmp(t->text, keywords[i].name))
			return (enum kw)i;
	return KW_NONE;
}

/* Edit distance, for "did you mean". Only short words are compared. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[33];

	if (la > 32 || lb > 32)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static const char *suggest(const char *word, enum ctx ctx)
{
	const char *best = NULL;
	size_t bestd = 3, len = strlen(word);

	for (int i = 0; i < KW__COUNT; i++) {
		if (keywords[i].ctx != ctx)
			continue;
		size_t d = distance(word, keywords[i].name);
		/* a distance of half the word or more is a different word, not a typo */
		if (d < bestd && d * 2 < len && d * 2 < strlen(keywords[i].name)) {
			best = keywords[i].name;
			bestd = d;
		}
	}
	return best;
}

static void unknown_statement(struct parser *p, const struct token *t, enum ctx ctx)
{
	char b[48];
	char where[24] = "";
	const char *s;

	if (t->type != T_WORD) {
		perror_at(p, t->line, "expected a statement, found the string \"%s\"",
			  show(t, b, sizeof(b)));
		return;
	}
	enum kw kw = kw_lookup(t);
	if (kw != KW_NONE) {
		if (keywords[kw].ctx == CTX_GLOBAL)
			perror_at(p, t->line,
				  "%s is a global statement, not valid inside a %s block",
				  keywords[kw].name, ctx_name[ctx]);
		else
			perror_at(p, t->line, "%s is only valid inside a %s block",
				  keywords[kw].name, ctx_name[keywords[kw].ctx]);
		return;
	}
	if (ctx != CTX_GLOBAL)
		snprintf(where, sizeof(where), " in %s block", ctx_name[ctx]);
	s = suggest(t->text, ctx);
	if (s)
		perror_at(p, t->line, "unknown statement \"%s\"%s (did you mean \"%s\"?)",
			  show(t, b, sizeof(b)), where, s);
	else
		perror_at(p, t->line, "unknown statement \"%s\"%s", show(t, b, sizeof(b)), where);
}

/* Exactly one value after the keyword; reports a missing value or trailing tokens. */
static const struct token *one_value(struct parser *p, const struct stmt *st, const char *expect)
{
	char b[48];

	if (st->ntok < 2) {
		perror_at(p, st->tok[0].line, "%s: missing value (expected %s)", st->tok[0].text,
			  expect);
		return NULL;
	}
	if (st->ntok > 2) {
		perror_at(p, st->tok[0].line, "%s: unexpected \"%s\" after the value",
			  st->tok[0].text, show(&st->tok[2], b, sizeof(b)));
		return NULL;
	}
	return &st->tok[1];
}

/* Decimal (and 0x hex if allowed) without sign; false if not a number. Values too
 * large for 64 bits saturate, which every range check then rejects. */
static bool parse_num(const struct token *t, bool hex, uint64_t *out)
{
	const char *s = t->text;
	unsigned base = 10;
	uint64_t v = 0;

	if (t->type == T_STRING || t->len == 0)
		return false;
	if (hex && t->len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return false;
		if (v > (UINT64_MAX - d) / base)
			v = UINT64_MAX;
		else
			v = v * base + d;
	}
	*out = v;
	return true;
}

static bool num_in_range(struct parser *p, const struct stmt *st, uint64_t lo, uint64_t hi,
			 uint64_t *out)
{
	char b[48];
	char range[32];
	const struct token *t;

	snprintf(range, sizeof(range), "%llu..%llu", (unsigned long long)lo,
		 (unsigned long long)hi);
	t = one_value(p, st, range);
	if (!t)
		return false;
	if (!parse_num(t, false, out)) {
		perror_at(p, t->line, "%s: \"%s\" is not a number (expected %s)", st->tok[0].text,
			  show(t, b, sizeof(b)), range);
		return false;
	}
	if (*out < lo || *out > hi) {
		perror_at(p, t->line, "%s %s out of range %s", st->tok[0].text,
			  show(t, b, sizeof(b)), range);
		return false;
	}
	return true;
}

static bool yes_no(struct parser *p, const struct stmt *st, bool *out)
{
	char b[48];
	const struct token *t = one_value(p, st, "yes or no");

	if (!t)
		return false;
	if (!strcmp(t->text, "yes")) {
		*out = true;
	} else if (!strcmp(t->text, "no")) {
		*out = false;
	} else {
		perror_at(p, t->line, "%s: expected yes or no, not \"%s\"", st->tok[0].text,
			  show(t, b, sizeof(b)));
		return false;
	}
	return true;
}

/* An address without prefix; family 0 if it is neither IPv4 nor IPv6. */
static int parse_ip(const char *s, size_t len, void *out)
{
	char tmp[INET6_ADDRSTRLEN + 1];

	if (len == 0 || len >= sizeof(tmp))
		return 0;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (memchr(tmp, ':', len))
		return inet_pton(AF_INET6, tmp, out) == 1 ? AF_INET6 : 0;
	return inet_pton(AF_INET, tmp, out) == 1 ? AF_INET : 0;
}

static bool v4_multicast(struct in_addr a)
{
	return (ntohl(a.s_addr) >> 28) == 0xe;
}

static bool v4_unusable(struct in_addr a)
{
	return a.s_addr == htonl(INADDR_ANY) || a.s_addr == htonl(INADDR_BROADCAST);
}

static bool ip_str(int family, const void *a, char *buf, size_t len)
{
	return inet_ntop(family, a, buf, (socklen_t)len) != NULL;
}

/* ---- statements ------------------------------------------------------------ */

/* Records a statement's line; false (after an error) if it was already given. */
static bool first_time(struct parser *p, int *kw_line, enum kw kw, int line)
{
	if (kw_line[kw]) {
		perror_at(p, line, "duplicate %s (already given at line %d)", keywords[kw].name,
			  kw_line[kw]);
		return false;
	}
	kw_line[kw] = line;
	return true;
}

static bool path_value(struct parser *p, const struct stmt *st, char *out, size_t size,
		       bool absolute)
{
	const struct token *t = one_value(p, st, "a quoted path");

	if (!t)
		return false;
	if (t->len == 0) {
		perror_at(p, t->line, "%s: empty path", st->tok[0].text);
		return false;
	}
	if (absolute && t->text[0] != '/') {
		perror_at(p, t->line, "%s: path must be absolute (start with /)", st->tok[0].text);
		return false;
	}
	if (t->len >= size) {
		perror_at(p, t->line, "%s: path too long (at most %zu bytes)", st->tok[0].text,
			  size - 1);
		return false;
	}
	memcpy(out, t->text, t->len + 1);
	return true;
}

/* A user or group name as getpwnam/getgrnam take it: printable, no space, ':' or '/',
 * not starting with '-'. */
static bool valid_account_name(const struct token *t, size_t size)
{
	bool ok = t->type == T_WORD || t->type == T_STRING;
	ok = ok && t->len > 0 && t->len < size && t->text[0] != '-';
	for (size_t i = 0; ok && i < t->len; i++) {
		unsigned char ch = (unsigned char)t->text[i];
		ok = ch > 0x20 && ch < 0x7f && ch != ':' && ch != '/';
	}
	return ok;
}

/* control-ro PATH [group NAME] */
static void control_ro_stmt(struct parser *p, const struct stmt *st)
{
	struct conf *c = p->conf;
	int line = st->tok[0].line;
	char b[48];

	if (st->ntok < 2) {
		perror_at(p, line, "control-ro: missing value (expected a quoted path)");
		return;
	}
	const struct token *t = &st->tok[1];
	if (t->len == 0) {
		perror_at(p, line, "control-ro: empty path");
		return;
	}
	if (t->len >= sizeof(c->control_ro)) {
		perror_at(p, line, "control-ro: path too long (at most %zu bytes)",
			  sizeof(c->control_ro) - 1);
		return;
	}
	const struct token *g = NULL;
	if (st->ntok > 2) {
		if (st->tok[2].type != T_WORD || strcmp(st->tok[2].text, "group")) {
			perror_at(p, line,
				  "control-ro: unexpected \"%s\" after the path (expected group "
				  "NAME)",
				  show(&st->tok[2], b, sizeof(b)));
			return;
		}
		if (st->ntok < 4) {
			perror_at(p, line, "control-ro: missing group name after \"group\"");
			return;
		}
		if (st->ntok > 4) {
			perror_at(p, line, "control-ro: unexpected \"%s\" after the group name",
				  show(&st->tok[4], b, sizeof(b)));
			return;
		}
		g = &st->tok[3];
		if (!valid_account_name(g, sizeof(c->control_ro_group))) {
			perror_at(p, line, "control-ro: invalid group name \"%s\"",
				  show(g, b, sizeof(b)));
			return;
		}
	}
	memcpy(c->control_ro, t->text, t->len + 1);
	if (g)
		memcpy(c->control_ro_group, g->text, g->len + 1);
	c->control_ro_line = line;
}

static void global_stmt(struct parser *p, const struct stmt *st, enum kw kw)
{
	struct conf *c = p->conf;
	int line = st->tok[0].line;
	uint64_t v;
	char b[48];

	if (!first_time(p, p->global_line, kw, line))
		return;
	switch (kw) {
	case KW_CONTROL:
		if (path_value(p, st, c->control, sizeof(c->control), false))
			c->control_set = true;
		break;
	case KW_PREEMPT:
		yes_no(p, st, &c->preempt);
		break;
	case KW_FOLLOW_DEMOTION:
		yes_no(p, st, &c->follow_demotion);
		break;
	case KW_HOSTID: {
		const struct token *t = one_value(p, st, "a number 1..0xffffffff");
		if (!t)
			break;
		if (!parse_num(t, true, &v)) {
			perror_at(p, line, "hostid: \"%s\" is not a number (decimal or 0x hex)",
				  show(t, b, sizeof(b)));
		} else if (v == 0) {
			perror_at(p, line,
				  "hostid 0 out of range 1..0xffffffff "
				  "(leave hostid out to have one derived)");
		} else if (v > 0xffffffffu) {
			perror_at(p, line, "hostid %s out of range 1..0xffffffff",
				  show(t, b, sizeof(b)));
		} else {
			c->hostid = (uint32_t)v;
		}
		break;
	}
	case KW_NOTIFY:
		path_value(p, st, c->notify, sizeof(c->notify), true);
		break;
	case KW_CONTROL_RO:
		control_ro_stmt(p, st);
		break;
	case KW_NOTIFY_USER: {
		const struct token *t = one_value(p, st, "a user name");
		if (!t)
			break;
		if (!valid_account_name(t, sizeof(c->notify_user)))
			perror_at(p, line, "notify-user: invalid user name \"%s\"",
				  show(t, b, sizeof(b)));
		else
			memcpy(c->notify_user, t->text, t->len + 1);
		break;
	}
	case KW_STATE_DIR:
		path_value(p, st, c->state_dir, sizeof(c->state_dir), true);
		break;
	default:
		break;
	}
}

static void address_stmt(struct parser *p, const struct stmt *st, struct conf_vhid *v,
			 struct vmeta *m)
{
	const struct token *t = one_value(p, st, "an address such as 198.51.100.1/24");
	struct conf_addr a = {0};
	char b[48];
	char s[INET6_ADDRSTRLEN];
	int line = st->tok[0].line;

	if (!t)
		return;
	const char *slash = memchr(t->text, '/', t->len);
	size_t alen = slash ? (size_t)(slash - t->text) : t->len;
	a.family = parse_ip(t->text, alen, &a.addr);
	if (!a.family) {
		perror_at(p, line, "address: \"%s\" is not an IPv4 or IPv6 address",
			  show(t, b, sizeof(b)));
		return;
	}
	unsigned maxlen = a.family == AF_INET ? 32 : 128;
	a.prefixlen = (uint8_t)maxlen;
	if (slash) {
		struct token pt = {.type = T_WORD};
		pt.len = t->len - alen - 1;
		memcpy(pt.text, slash + 1, pt.len + 1);
		uint64_t plen;
		if (!parse_num(&pt, false, &plen) || plen < 1 || plen > maxlen) {
			perror_at(p, line, "address %s: prefix length out of range 1..%u",
				  show(t, b, sizeof(b)), maxlen);
			return;
		}
		a.prefixlen = (uint8_t)plen;
	}
	ip_str(a.family, &a.addr, s, sizeof(s));
	if (a.family == AF_INET ? v4_multicast(a.addr.v4) : IN6_IS_ADDR_MULTICAST(&a.addr.v6)) {
		perror_at(p, line, "address: %s is a multicast address", s);
		return;
	}
	if (a.family == AF_INET ? v4_unusable(a.addr.v4) : IN6_IS_ADDR_UNSPECIFIED(&a.addr.v6)) {
		perror_at(p, line, "address: %s is not usable as a virtual address", s);
		return;
	}
	if (v->naddrs >= CARP_MAX_ADDRS) {
		if (!m->too_many_addrs)
			perror_at(p, line, "vhid %u on %s: too many addresses (at most %d)",
				  v->vhid, v->ifname, CARP_MAX_ADDRS);
		m->too_many_addrs = true;
		return;
	}
	m->addr_line[v->naddrs] = line;
	v->addrs[v->naddrs++] = a;
}

static void password_stmt(struct parser *p, const struct stmt *st, enum kw kw, struct conf_vhid *v)
{
	const struct token *t = one_value(p, st, "a quoted password");
	int line = st->tok[0].line;

	if (!t)
		return;
	if (t->len == 0) {
		perror_at(p, line, "%s: empty password (leave the statement out for no key)",
			  keywords[kw].name);
		return;
	}
	if (kw == KW_PASSWORD) {
		carp_key_from_password(t->text, v->key);
	} else {
		/* Only the first 19 bytes of the transformed password become the key, so a
		 * buffer of that size plus the NUL is all that is needed. */
		char typed[CARP_PASSWORD_MAX + 1];
		carp_pfsense_password(t->text, typed, sizeof(typed));
		if (typed[0] == '\0') {
			perror_at(p, line,
				  "pfsense-password: empty once pfSense removes the spaces");
			return;
		}
		carp_key_from_password(typed, v->key);
	}
	/* Kept for display only; a longer password is cut here, the key is not affected. */
	size_t keep = t->len < sizeof(v->password) - 1 ? t->len : sizeof(v->password) - 1;
	memcpy(v->password, t->text, keep);
	v->password[keep] = '\0';
	v->has_password = true;
}

static void peer_stmt(struct parser *p, const struct stmt *st, enum kw kw, struct conf_vhid *v)
{
	const struct token *t =
		one_value(p, st, kw == KW_PEER ? "an IPv4 address" : "an IPv6 address");
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} a;
	char b[48];
	int line = st->tok[0].line;

	if (!t)
		return;
	int fam = parse_ip(t->text, t->len, &a);
	if (kw == KW_PEER) {
		if (fam == AF_INET6) {
			perror_at(p, line, "peer: %s is an IPv6 address (use peer6 for IPv6)",
				  show(t, b, sizeof(b)));
		} else if (fam != AF_INET) {
			perror_at(p, line, "peer: \"%s\" is not an IPv4 address",
				  show(t, b, sizeof(b)));
		} else if (v4_multicast(a.v4)) {
			perror_at(p, line,
				  "peer: %s is a multicast address (leave peer out for "
				  "multicast advertisements)",
				  show(t, b, sizeof(b)));
		} else if (v4_unusable(a.v4)) {
			perror_at(p, line, "peer: %s is not a unicast address",
				  show(t, b, sizeof(b)));
		} else {
			v->peer = a.v4;
			v->has_peer = true;
		}
		return;
	}
	if (fam == AF_INET) {
		perror_at(p, line, "peer6: %s is an IPv4 address (use peer for IPv4)",
			  show(t, b, sizeof(b)));
	} else if (fam != AF_INET6) {
		perror_at(p, line, "peer6: \"%s\" is not an IPv6 address", show(t, b, sizeof(b)));
	} else if (IN6_IS_ADDR_MULTICAST(&a.v6)) {
		perror_at(p, line,
			  "peer6: %s is a multicast address (leave peer6 out for "
			  "multicast advertisements)",
			  show(t, b, sizeof(b)));
	} else if (IN6_IS_ADDR_UNSPECIFIED(&a.v6)) {
		perror_at(p, line, "peer6: %s is not a unicast address", show(t, b, sizeof(b)));
	} else {
		v->peer6 = a.v6;
		v->has_peer6 = true;
	}
}

static void vhid_stmt(struct parser *p, const struct stmt *st, enum kw kw, struct conf_vhid *v,
		      struct vmeta *m)
{
	uint64_t n;
	int line = st->tok[0].line;

	if (kw == KW_PASSWORD || kw == KW_PFSENSE_PASSWORD) {
		/* the two set the same key: one of them, once */
		enum kw other = kw == KW_PASSWORD ? KW_PFSENSE_PASSWORD : KW_PASSWORD;
		if (m->kw_line[other]) {
			perror_at(p, line,
				  "password and pfsense-password are mutually exclusive "
				  "(%s already given at line %d)",
				  keywords[other].name, m->kw_line[other]);
			return;
		}
	}
	if (kw == KW_ADDRESS) {
		/* repeatable: the line of the first one only tells that there was one */
		if (!m->kw_line[KW_ADDRESS])
			m->kw_line[KW_ADDRESS] = line;
	} else if (!first_time(p, m->kw_line, kw, line)) {
		return;
	}
	switch (kw) {
	case KW_ADDRESS:
		address_stmt(p, st, v, m);
		break;
	case KW_ADVBASE:
		/* 0 is fast mode (carpd and OpenBSD only; carpd warns at start) */
		if (num_in_range(p, st, 0, 255, &n))
			v->advbase = (uint8_t)n;
		break;
	case KW_ADVSKEW:
		if (num_in_range(p, st, 0, 254, &n))
			v->advskew = (uint8_t)n;
		break;
	case KW_PASSWORD:
	case KW_PFSENSE_PASSWORD:
		password_stmt(p, st, kw, v);
		break;
	case KW_PEER:
	case KW_PEER6:
		peer_stmt(p, st, kw, v);
		break;
	default:
		break;
	}
}

static void pfsync_stmt(struct parser *p, const struct stmt *st, enum kw kw, struct conf_pfsync *ps,
			int *kw_line)
{
	char b[48];
	uint64_t n;

	if (!first_time(p, kw_line, kw, st->tok[0].line))
		return;
	switch (kw) {
	case KW_SYNCPEER: {
		const struct token *t = one_value(p, st, "an IPv4 or IPv6 address");
		if (!t)
			break;
		int fam = parse_ip(t->text, t->len, &ps->syncpeer);
		if (!fam) {
			perror_at(p, t->line, "syncpeer: \"%s\" is not an IPv4 or IPv6 address",
				  show(t, b, sizeof(b)));
		} else if (fam == AF_INET ? v4_unusable(ps->syncpeer.v4)
					  : IN6_IS_ADDR_UNSPECIFIED(&ps->syncpeer.v6)) {
			perror_at(p, t->line, "syncpeer: %s is not a usable address",
				  show(t, b, sizeof(b)));
		} else {
			ps->syncpeer_family = fam;
			ps->has_syncpeer = true;
		}
		break;
	}
	case KW_VERSION:
		if (!one_value(p, st, "1301, 1400 or 1500"))
			break;
		if (!parse_num(&st->tok[1], false, &n) || (n != 1301 && n != 1400 && n != 1500))
			perror_at(p, st->tok[1].line,
				  "version %s is not supported (1301, 1400 or 1500)",
				  show(&st->tok[1], b, sizeof(b)));
		else
			ps->version = (uint16_t)n;
		break;
	case KW_DEFER:
		yes_no(p, st, &ps->defer);
		break;
	case KW_ACTIVITY_MARK: {
		const struct token *t =
			one_value(p, st, "a conntrack mark bit (0x80000000) or none");
		if (!t)
			break;
		if (t->type != T_STRING && !strcmp(t->text, "none")) {
			ps->activity_mark = 0;
		} else if (!parse_num(t, true, &n) || n == 0 || n > 0xffffffffu || (n & (n - 1))) {
			perror_at(p, t->line,
				  "activity-mark: \"%s\" is not one bit of the conntrack mark "
				  "(0x1 .. 0x80000000) or none",
				  show(t, b, sizeof(b)));
		} else {
			ps->activity_mark = (uint32_t)n;
		}
		break;
	}
	default:
		break;
	}
}

/* ---- blocks ---------------------------------------------------------------- */

/*
 * Parses a block body up to its '}'. The opening '{' has been read. A 'vhid' or
 * 'pfsync' statement inside means the '}' was forgotten: the block ends there and
 * the statement is handed back to the top level (p->replay).
 */
static void parse_block(struct parser *p, enum ctx ctx, const char *what, int open_line,
			struct conf_vhid *v, struct vmeta *m, struct conf_pfsync *ps, int *ps_line)
{
	struct stmt *st = &p->st;

	while (!p->stopped) {
		read_stmt(p, st);
		if (st->ntok > 0) {
			enum kw kw = kw_lookup(&st->tok[0]);
			if (kw == KW_VHID || kw == KW_PFSYNC) {
				perror_at(p, open_line,
					  "%s: missing '}' (block not closed before "
					  "line %d)",
					  what, st->tok[0].line);
				p->replay = true;
				return;
			}
			if (kw == KW_NONE || keywords[kw].ctx != ctx)
				unknown_statement(p, &st->tok[0], ctx);
			else if (ctx == CTX_VHID)
				vhid_stmt(p, st, kw, v, m);
			else
				pfsync_stmt(p, st, kw, ps, ps_line);
		}
		switch (st->term) {
		case T_NL:
			break;
		case T_RBRACE:
			after_rbrace(p, st->term_line);
			return;
		case T_LBRACE:
			perror_at(p, st->term_line, "unexpected '{' (blocks do not nest)");
			skip_block(p, st->term_line);
			break;
		default: /* T_EOF */
			perror_at(p, open_line, "%s: missing '}' at end of file", what);
			return;
		}
	}
}

/* Checks that need the whole block: a vhid needs an address, a unicast peer needs an
 * address of its family to advertise. */
static void vhid_block_done(struct parser *p, const struct conf_vhid *v, const struct vmeta *m)
{
	bool has4 = false, has6 = false;

	for (size_t i = 0; i < v->naddrs; i++) {
		has4 |= v->addrs[i].family == AF_INET;
		has6 |= v->addrs[i].family == AF_INET6;
	}
	/* an address statement that was rejected has had its own message */
	if (v->naddrs == 0 && !m->kw_line[KW_ADDRESS])
		perror_at(p, v->line, "vhid %u on %s has no address", v->vhid, v->ifname);
	else if (v->has_peer && !has4)
		perror_at(p, m->kw_line[KW_PEER],
			  "peer is IPv4 but vhid %u on %s has no IPv4 address", v->vhid, v->ifname);
	if (v->naddrs > 0 && v->has_peer6 && !has6)
		perror_at(p, m->kw_line[KW_PEER6],
			  "peer6 is IPv6 but vhid %u on %s has no IPv6 address", v->vhid,
			  v->ifname);
}

static bool valid_ifname(const struct token *t)
{
	if (t->len == 0 || t->len >= IF_NAMESIZE)
		return false;
	/* the kernel refuses these two names */
	if (!strcmp(t->text, ".") || !strcmp(t->text, ".."))
		return false;
	for (size_t i = 0; i < t->len; i++) {
		char c = t->text[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* "KW N on IFNAME {" or "KW on IFNAME {": checks the words between keyword and brace.
 * Returns the interface token, or NULL after an error. */
static const struct token *header_ifname(struct parser *p, const struct stmt *st, size_t on_at)
{
	const char *kw = st->tok[0].text;
	int line = st->tok[0].line;
	char b[48];

	if (st->ntok <= on_at) {
		perror_at(p, line, "%s: missing \"on INTERFACE\"", kw);
		return NULL;
	}
	if (strcmp(st->tok[on_at].text, "on") || st->tok[on_at].type != T_WORD) {
		perror_at(p, line, "%s: expected \"on\", found \"%s\"", kw,
			  show(&st->tok[on_at], b, sizeof(b)));
		return NULL;
	}
	if (st->ntok <= on_at + 1) {
		perror_at(p, line, "%s: missing interface name after \"on\"", kw);
		return NULL;
	}
	const struct token *ift = &st->tok[on_at + 1];
	if (!valid_ifname(ift)) {
		perror_at(p, line,
			  "invalid interface name \"%s\" (1..15 characters of A-Z a-z 0-9 _ . -)",
			  show(ift, b, sizeof(b)));
		return NULL;
	}
	if (st->ntok > on_at + 2) {
		perror_at(p, line, "%s: unexpected \"%s\" after the interface name", kw,
			  show(&st->tok[on_at + 2], b, sizeof(b)));
		return NULL;
	}
	return ift;
}

static struct conf_vhid *new_vhid(struct parser *p, struct vmeta **meta)
{
	struct conf *c = p->conf;

	if (c->nvhids == p->vcap) {
		size_t ncap = p->vcap ? p->vcap * 2 : 8;
		if (ncap > CONF_MAX_VHIDS)
			ncap = CONF_MAX_VHIDS;
		struct conf_vhid *nv = realloc(c->vhids, ncap * sizeof(*nv));
		if (!nv)
			return NULL;
		c->vhids = nv;
		struct vmeta *nm = realloc(p->meta, ncap * sizeof(*nm));
		if (!nm)
			return NULL;
		p->meta = nm;
		p->vcap = ncap;
	}
	struct conf_vhid *v = &c->vhids[c->nvhids];
	*meta = &p->meta[c->nvhids];
	c->nvhids++;
	return v;
}

static void init_vhid(struct conf_vhid *v, struct vmeta *m)
{
	memset(v, 0, sizeof(*v));
	memset(m, 0, sizeof(*m));
	v->advbase = 1;
	v->advskew = 0;
}

/* "vhid N on IFNAME {": validates the header and says where the block goes: a new
 * entry, or when the header is bad a scratch entry, so that the block's own errors
 * are still reported. */
static void vhid_header(struct parser *p, const struct stmt *st, struct conf_vhid **out_v,
			struct vmeta **out_m)
{
	struct conf *c = p->conf;
	int line = st->tok[0].line;
	uint64_t n = 0;
	char b[48];
	bool ok = true;
	const struct token *ift = NULL;

	if (st->ntok < 2) {
		perror_at(p, line, "vhid: missing value (expected vhid N on INTERFACE {)");
		ok = false;
	} else if (!parse_num(&st->tok[1], false, &n)) {
		perror_at(p, line, "vhid: \"%s\" is not a number (expected 1..255)",
			  show(&st->tok[1], b, sizeof(b)));
		ok = false;
	} else if (n < 1 || n > 255) {
		perror_at(p, line, "vhid %s out of range 1..255", show(&st->tok[1], b, sizeof(b)));
		ok = false;
	}
	if (ok) {
		ift = header_ifname(p, st, 2);
		ok = ift != NULL;
	}
	if (ok) {
		for (size_t i = 0; i < c->nvhids; i++) {
			if (c->vhids[i].vhid == n && !strcmp(c->vhids[i].ifname, ift->text)) {
				perror_at(p, line, "vhid %u on %s already declared at line %d",
					  (unsigned)n, ift->text, c->vhids[i].line);
				ok = false;
				break;
			}
		}
	}
	if (ok && c->nvhids >= CONF_MAX_VHIDS) {
		perror_at(p, line, "too many vhid blocks (at most %d)", CONF_MAX_VHIDS);
		ok = false;
	}
	struct conf_vhid *v = NULL;
	struct vmeta *m = NULL;
	if (ok) {
		v = new_vhid(p, &m);
		if (!v) {
			perror_at(p, line, "out of memory");
			p->stopped = true;
			return;
		}
	} else {
		v = &p->scratch;
		m = &p->scratch_meta;
	}
	init_vhid(v, m);
	v->line = line;
	v->vhid = (uint8_t)n;
	if (ift)
		memcpy(v->ifname, ift->text, ift->len + 1);
	*out_v = v;
	*out_m = m;
}

static void pfsync_header(struct parser *p, const struct stmt *st, struct conf_pfsync **out,
			  int **out_line)
{
	struct conf *c = p->conf;
	int line = st->tok[0].line;
	struct conf_pfsync *ps = &c->pfsync;
	int *kwl = p->pfsync_kw_line;
	const struct token *ift = header_ifname(p, st, 1);
	bool ok = ift != NULL;

	if (c->pfsync.enabled) {
		perror_at(p, line, "pfsync already declared at line %d", c->pfsync.line);
		ok = false;
	}
	if (!ok) {
		ps = &p->scratch_pfsync;
		kwl = p->scratch_pfsync_kw_line;
	}
	memset(ps, 0, sizeof(*ps));
	memset(kwl, 0, sizeof(p->pfsync_kw_line));
	ps->version = 1400;
	ps->activity_mark = CONF_ACTIVITY_MARK_DEFAULT;
	ps->line = line;
	ps->enabled = true;
	if (ift)
		memcpy(ps->ifname, ift->text, ift->len + 1);
	*out = ps;
	*out_line = kwl;
}

/* What a header without '{' on its line was, so that a '{' alone on the next line
 * can still be attached to it (after the error). */
struct pending {
	enum ctx ctx; /* CTX_GLOBAL: none */
	struct conf_vhid *v;
	struct vmeta *m;
	struct conf_pfsync *ps;
	int *ps_line;
	int line;
};

static void open_block(struct parser *p, const struct pending *pd)
{
	char what[48];

	if (pd->ctx == CTX_VHID) {
		snprintf(what, sizeof(what), "vhid %u on %s", pd->v->vhid,
			 pd->v->ifname[0] ? pd->v->ifname : "?");
		parse_block(p, CTX_VHID, what, pd->line, pd->v, pd->m, NULL, NULL);
		/* a rejected header's block was only read for its own errors */
		if (pd->v != &p->scratch)
			vhid_block_done(p, pd->v, pd->m);
	} else {
		parse_block(p, CTX_PFSYNC, "pfsync", pd->line, NULL, NULL, pd->ps, pd->ps_line);
	}
}

static void parse_top(struct parser *p)
{
	struct stmt *st = &p->st;
	struct pending pd = {.ctx = CTX_GLOBAL};

	while (!p->stopped) {
		if (p->replay)
			p->replay = false;
		else
			read_stmt(p, st);
		if (st->ntok == 0) {
			if (st->term == T_EOF)
				return;
			if (st->term == T_NL)
				continue;
			if (st->term == T_LBRACE) {
				if (pd.ctx != CTX_GLOBAL) {
					/* the error about the missing '{' was given already */
					struct pending cur = pd;
					pd.ctx = CTX_GLOBAL;
					open_block(p, &cur);
				} else {
					perror_at(p, st->term_line, "unexpected '{'");
					skip_block(p, st->term_line);
				}
			} else {
				perror_at(p, st->term_line, "unexpected '}' (no block is open)");
			}
			continue;
		}
		pd.ctx = CTX_GLOBAL;
		enum kw kw = kw_lookup(&st->tok[0]);
		struct pending cur = {.ctx = CTX_GLOBAL, .line = st->tok[0].line};
		if (kw == KW_VHID) {
			vhid_header(p, st, &cur.v, &cur.m);
			if (!p->stopped)
				cur.ctx = CTX_VHID;
		} else if (kw == KW_PFSYNC) {
			pfsync_header(p, st, &cur.ps, &cur.ps_line);
			cur.ctx = CTX_PFSYNC;
		} else if (kw == KW_NONE || keywords[kw].ctx != CTX_GLOBAL) {
			unknown_statement(p, &st->tok[0], CTX_GLOBAL);
		} else {
			global_stmt(p, st, kw);
		}
		if (p->stopped)
			return;
		switch (st->term) {
		case T_LBRACE:
			if (cur.ctx != CTX_GLOBAL) {
				open_block(p, &cur);
			} else {
				/* an unknown statement was reported already */
				if (kw != KW_NONE && keywords[kw].ctx == CTX_GLOBAL)
					perror_at(p, st->term_line, "unexpected '{' after %s",
						  keywords[kw].name);
				skip_block(p, st->term_line);
			}
			break;
		case T_RBRACE:
			perror_at(p, st->term_line, "unexpected '}' (no block is open)");
			break;
		default:
			if (cur.ctx != CTX_GLOBAL) {
				perror_at(p, cur.line, "%s: expected '{' at the end of the line",
					  keywords[kw].name);
				pd = cur;
			}
			if (st->term == T_EOF)
				return;
			break;
		}
	}
}

/* ---- final checks ---------------------------------------------------------- */

struct addr_ref {
	const struct conf_addr *a;
	size_t vi;
	int line;
};

static int addr_cmp(const struct conf_addr *a, const struct conf_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->family == AF_INET)
		return memcmp(&a->addr.v4, &b->addr.v4, sizeof(a->addr.v4));
	return memcmp(&a->addr.v6, &b->addr.v6, sizeof(a->addr.v6));
}

static int ref_cmp(const void *x, const void *y)
{
	const struct addr_ref *a = x, *b = y;
	int r = addr_cmp(a->a, b->a);
	if (r)
		return r;
	return (a->line > b->line) - (a->line < b->line);
}

/* One address may belong to one vhid only, once. Sorting keeps this O(n log n) even
 * for 1024 vhids of 64 addresses. */
static void check_addresses(struct parser *p)
{
	struct conf *c = p->conf;
	size_t n = 0;

	for (size_t i = 0; i < c->nvhids; i++)
		n += c->vhids[i].naddrs;
	if (n < 2)
		return;
	struct addr_ref *refs = calloc(n, sizeof(*refs));
	if (!refs) {
		perror_at(p, 0, "out of memory");
		return;
	}
	n = 0;
	for (size_t i = 0; i < c->nvhids; i++)
		for (size_t j = 0; j < c->vhids[i].naddrs; j++)
			refs[n++] = (struct addr_ref){&c->vhids[i].addrs[j], i,
						      p->meta[i].addr_line[j]};
	qsort(refs, n, sizeof(*refs), ref_cmp);
	size_t first = 0;
	for (size_t i = 1; i < n; i++) {
		if (addr_cmp(refs[first].a, refs[i].a)) {
			first = i;
			continue;
		}
		char s[INET6_ADDRSTRLEN];
		const struct conf_vhid *o = &c->vhids[refs[first].vi];
		ip_str(refs[i].a->family, &refs[i].a->addr, s, sizeof(s));
		if (refs[first].vi == refs[i].vi)
			perror_at(p, refs[i].line,
				  "duplicate address %s (already given at line %d)", s,
				  refs[first].line);
		else
			perror_at(p, refs[i].line,
				  "address %s already used by vhid %u on %s at line %d", s, o->vhid,
				  o->ifname, refs[first].line);
	}
	free(refs);
}

/* ---- public ---------------------------------------------------------------- */

struct conf *conf_parse_buffer(const char *name, const char *text, size_t len,
			       struct conf_errors *errs)
{
	struct conf_errors local;
	struct parser *p;
	struct conf *c;

	if (!errs)
		errs = &local;
	errs->count = 0;
	if (!name)
		name = "carpd.conf";
	if (!text)
		len = 0;
	p = calloc(1, sizeof(*p));
	c = calloc(1, sizeof(*c));
	if (!p || !c) {
		append_err(errs, "%s: out of memory", name);
		free(p);
		free(c);
		return NULL;
	}
	snprintf(c->control, sizeof(c->control), "%s", CONF_DEFAULT_CONTROL);
	snprintf(c->state_dir, sizeof(c->state_dir), "%s", DEFAULT_STATE_DIR);
	snprintf(c->path, sizeof(c->path), "%s", name);
	c->preempt = true;
	c->follow_demotion = true;
	c->pfsync.version = 1400;
	c->pfsync.activity_mark = CONF_ACTIVITY_MARK_DEFAULT;

	p->name = name;
	p->buf = text;
	p->len = len;
	p->line = 1;
	p->conf = c;

	parse_top(p);
	if (!p->stopped)
		check_addresses(p);
	if (!p->stopped && c->control_ro[0] && !strcmp(c->control_ro, c->control))
		perror_at(p, c->control_ro_line,
			  "control-ro: \"%s\" is already the control socket (give another path)",
			  c->control_ro);

	bool failed = p->nerrs > 0;
	flush_errors(p, errs);
	free(p->meta);
	free(p);
	if (failed) {
		conf_free(c);
		return NULL;
	}
	return c;
}

struct conf *conf_parse_file(const char *path, struct conf_errors *errs)
{
	struct conf_errors local;
	struct stat sb;
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!errs)
		errs = &local;
	errs->count = 0;
	f = fopen(path, "re");
	if (!f) {
		append_err(errs, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
		append_err(errs, "%s: is a directory", path);
		fclose(f);
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 8192;
			char *nb = ncap <= CONF_MAX_FILE_SIZE ? realloc(buf, ncap) : NULL;
			if (!nb) {
				if (ncap > CONF_MAX_FILE_SIZE)
					append_err(errs, "%s: file too large (over %u bytes)", path,
						   CONF_MAX_FILE_SIZE);
				else
					append_err(errs, "%s: out of memory", path);
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		append_err(errs, "%s: read error: %s", path, strerror(errno));
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	struct conf *c = conf_parse_buffer(path, buf, len, errs);
	free(buf);
	return c;
}

void conf_free(struct conf *conf)
{
	if (!conf)
		return;
	free(conf->vhids);
	free(conf);
}

static void check_if(const struct conf *conf, struct conf_errors *errs, const char *ifname,
		     int line, int *problems)
{
	/* one message per interface, at its first mention */
	for (size_t i = 0; i < conf->nvhids; i++) {
		if (conf->vhids[i].line < line && !strcmp(conf->vhids[i].ifname, ifname))
			return;
	}
	if (conf->pfsync.enabled && conf->pfsync.line < line &&
	    !strcmp(conf->pfsync.ifname, ifname))
		return;
	if (if_nametoindex(ifname) != 0)
		return;
	(*problems)++;
	if (errs)
		append_err(errs, "%s:%d: interface %s does not exist",
			   conf->path[0] ? conf->path : "carpd.conf", line, ifname);
}

static void check_group(const struct conf *conf, struct conf_errors *errs, int *problems)
{
	if (!conf->control_ro_group[0] || getgrnam(conf->control_ro_group))
		return;
	(*problems)++;
	if (errs)
		append_err(errs, "%s:%d: control-ro: group %s does not exist",
			   conf->path[0] ? conf->path : "carpd.conf", conf->control_ro_line,
			   conf->control_ro_group);
}

int conf_check_system(const struct conf *conf, struct conf_errors *errs)
{
	int problems = 0;

	if (!conf)
		return 0;
	/* in file order, so that the messages come out sorted by line */
	bool pfsync_done = !conf->pfsync.enabled;
	bool group_done = !conf->control_ro_group[0];
	for (size_t i = 0; i < conf->nvhids; i++) {
		int line = conf->vhids[i].line;
		if (!group_done && conf->control_ro_line < line &&
		    (pfsync_done || conf->control_ro_line < conf->pfsync.line)) {
			check_group(conf, errs, &problems);
			group_done = true;
		}
		if (!pfsync_done && conf->pfsync.line < line) {
			check_if(conf, errs, conf->pfsync.ifname, conf->pfsync.line, &problems);
			pfsync_done = true;
		}
		if (!group_done && conf->control_ro_line < line) {
			check_group(conf, errs, &problems);
			group_done = true;
		}
		check_if(conf, errs, conf->vhids[i].ifname, line, &problems);
	}
	if (!group_done && !pfsync_done && conf->control_ro_line < conf->pfsync.line) {
		check_group(conf, errs, &problems);
		group_done = true;
	}
	if (!pfsync_done)
		check_if(conf, errs, conf->pfsync.ifname, conf->pfsync.line, &problems);
	if (!group_done)
		check_group(conf, errs, &problems);
	return problems;
}

static bool addr_eq(const struct conf_addr *a, const struct conf_addr *b)
{
	return a->prefixlen == b->prefixlen && addr_cmp(a, b) == 0;
}

bool conf_vhid_equal(const struct conf_vhid *a, const struct conf_vhid *b)
{
	if (a->vhid != b->vhid || strcmp(a->ifname, b->ifname) || a->advbase != b->advbase ||
	    a->advskew != b->advskew || a->naddrs != b->naddrs ||
	    a->has_password != b->has_password || memcmp(a->key, b->key, sizeof(a->key)) ||
	    a->has_peer != b->has_peer || a->has_peer6 != b->has_peer6)
		return false;
	if (a->has_peer && a->peer.s_addr != b->peer.s_addr)
		return false;
	if (a->has_peer6 && memcmp(&a->peer6, &b->peer6, sizeof(a->peer6)))
		return false;
	/* The address order changes nothing (the HMAC sorts them), so compare as sets;
	 * a block holds no duplicates, so equal counts plus inclusion is equality. */
	for (size_t i = 0; i < a->naddrs && i < CARP_MAX_ADDRS; i++) {
		bool found = false;
		for (size_t j = 0; j < b->naddrs && j < CARP_MAX_ADDRS && !found; j++)
			found = addr_eq(&a->addrs[i], &b->addrs[j]);
		if (!found)
			return false;
	}
	return true;
}

const char *conf_addr_str(const struct conf_addr *a, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN];

	if (!buf || len == 0)
		return "";
	if (!a || (a->family != AF_INET && a->family != AF_INET6) ||
	    !ip_str(a->family, &a->addr, s, sizeof(s)))
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%s/%u", s, (unsigned)a->prefixlen);
	return buf;
}
