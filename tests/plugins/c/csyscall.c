/*
 * A Falco field extractor on syscall events, written in C against the
 * plugin C API for Peregrine's host tests (types declared here from the
 * API's documentation; nothing is included from Falco). It sources no
 * events and names "syscall" as its one extraction source, so the host
 * asks it for fields on kernel events, handing over each event in the
 * scap layout. Its fields read that layout back:
 *   csys.type     the event type in the header
 *   csys.num      the event number the host passed
 *   csys.src      the source name the host passed
 *   csys.len      the header's length, checked against the parameters
 *                 (0 when the lengths do not add up)
 *   csys.str[i]   parameter i as text, when it is a NUL-ended string
 * Init config {"only": N} limits its event types to N (through
 * get_extract_event_types); otherwise it takes every type.
 * Built with -DCSYSCALL_NAME='"other"' it calls itself that, and with
 * -DCSYSCALL_EXTRA='"some.field"' it also defines that string field
 * (whose value is always "from-plugin"): the host's check of fields that
 * overlap another provider's is tested with it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CSYSCALL_NAME
#define CSYSCALL_NAME "csyscall"
#endif

typedef int32_t rc_t;
enum { RC_SUCCESS = 0, RC_FAILURE = 1 };

#pragma pack(push, 1)
struct event_header {
	uint64_t ts;
	uint64_t tid;
	uint32_t len;
	uint16_t type;
	uint32_t nparams;
};
#pragma pack(pop)

struct event_input {
	const struct event_header *evt;
	uint64_t evtnum;
	const char *evtsrc;
};

struct extract_field {
	void *res;
	uint64_t res_len;
	uint32_t field_id;
	const char *field;
	const char *arg_key;
	uint64_t arg_index;
	uint32_t arg_present;
	uint32_t ftype;
	uint32_t flist;
};

struct extract_input {
	void *owner;
	const char *(*get_owner_last_error)(void *owner);
	uint32_t num_fields;
	struct extract_field *fields;
};

struct init_input {
	const char *config;
	void *owner;
};

struct state {
	char error[128];
	uint16_t only[1];
	uint32_t nonly;
	uint64_t u64_out[1];
	const char *str_out[1];
	char str_buf[512];
};

const char *plugin_get_required_api_version(void) { return "3.0.0"; }
const char *plugin_get_name(void) { return CSYSCALL_NAME; }
const char *plugin_get_version(void) { return "0.1.0"; }
const char *plugin_get_description(void) { return "C extractor on syscall events"; }
const char *plugin_get_contact(void) { return "peregrine tests"; }
const char *plugin_get_extract_event_sources(void) { return "[\"syscall\"]"; }

void *plugin_init(const struct init_input *in, rc_t *rc)
{
	struct state *s = calloc(1, sizeof(*s));
	const char *only = in->config ? strstr(in->config, "\"only\":") : NULL;

	if (!s) {
		*rc = RC_FAILURE;
		return NULL;
	}
	if (only) {
		s->only[0] = (uint16_t)strtoul(only + 7, NULL, 10);
		s->nonly = 1;
	}
	*rc = RC_SUCCESS;
	return s;
}

void plugin_destroy(struct state *s) { free(s); }
const char *plugin_get_last_error(struct state *s) { return s->error; }

uint16_t *plugin_get_extract_event_types(uint32_t *n, struct state *s)
{
	*n = s->nonly;
	return s->nonly ? s->only : NULL;
}

const char *plugin_get_fields(void)
{
	return "["
	       "{\"type\":\"uint64\",\"name\":\"csys.type\",\"desc\":\"the header's event type\"},"
	       "{\"type\":\"uint64\",\"name\":\"csys.num\",\"desc\":\"the event number passed\"},"
	       "{\"type\":\"string\",\"name\":\"csys.src\",\"desc\":\"the source name passed\"},"
	       "{\"type\":\"uint64\",\"name\":\"csys.len\",\"desc\":\"the checked event length\"},"
	       "{\"type\":\"string\",\"name\":\"csys.str\",\"arg\":{\"isRequired\":true,\"isIndex\":true},\"desc\":\"a parameter as text\"}"
#ifdef CSYSCALL_EXTRA
	       ",{\"type\":\"string\",\"name\":\"" CSYSCALL_EXTRA "\",\"desc\":\"always from-plugin\"}"
#endif
	       "]";
}

/* The event's length when its 16-bit parameter lengths add up to it. */
static uint32_t checked_len(const struct event_header *e)
{
	const uint16_t *lens = (const uint16_t *)(e + 1);
	uint64_t total = sizeof(*e) + 2ull * e->nparams;
	uint32_t i;

	for (i = 0; i < e->nparams; i++)
		total += lens[i];
	return total == e->len ? e->len : 0;
}

rc_t plugin_extract_fields(struct state *s, const struct event_input *evt,
			   const struct extract_input *in)
{
	const struct event_header *e = evt->evt;
	uint32_t f;

	for (f = 0; f < in->num_fields; f++) {
		struct extract_field *x = &in->fields[f];
		x->res_len = 1;
		switch (x->field_id) {
		case 0:
			s->u64_out[0] = e->type;
			x->res = s->u64_out;
			break;
		case 1:
			s->u64_out[0] = evt->evtnum;
			x->res = s->u64_out;
			break;
		case 2:
			snprintf(s->str_buf, sizeof(s->str_buf), "%s", evt->evtsrc);
			s->str_out[0] = s->str_buf;
			x->res = s->str_out;
			break;
		case 3:
			s->u64_out[0] = checked_len(e);
			x->res = s->u64_out;
			break;
		case 4: {
			const uint16_t *lens = (const uint16_t *)(e + 1);
			const char *value = (const char *)(lens + e->nparams);
			uint64_t i;

			if (!checked_len(e) || x->arg_index >= e->nparams) {
				x->res_len = 0;
				break;
			}
			for (i = 0; i < x->arg_index; i++)
				value += lens[i];
			if (lens[i] == 0 || value[lens[i] - 1] != '\0') {
				x->res_len = 0;
				break;
			}
			snprintf(s->str_buf, sizeof(s->str_buf), "%s", value);
			s->str_out[0] = s->str_buf;
			x->res = s->str_out;
			break;
		}
		case 5:
			s->str_out[0] = "from-plugin";
			x->res = s->str_out;
			break;
		default:
			x->res_len = 0;
		}
	}
	return RC_SUCCESS;
}
