/*
 * A Falco plugin written in C against the plugin C API, for Peregrine's
 * host tests. The ABI types below are declared here from the API's
 * documentation (only the members this plugin reads or writes); nothing
 * is included from Falco.
 *
 * It sources "ctest" events (id 999), each with the payload "msg N", and
 * extracts fields from them. Its init config (JSON) steers the failure
 * modes the host must survive:
 *   {"count": N}          events before EOF (default 3)
 *   {"fail_init": true}   plugin_init fails with a message
 *   {"bad_batch": true}   next_batch returns an event whose parameter
 *                         lengths do not add up to its length
 *   {"fail_next": true}   next_batch fails with a message
 *   {"fail_extract": true} extract_fields fails
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int32_t rc_t;
enum { RC_SUCCESS = 0, RC_FAILURE = 1, RC_TIMEOUT = -1, RC_EOF = 2 };
enum { FT_UINT64 = 8, FT_STRING = 9, FT_BOOL = 25 };

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
	void *res; /* a pointer to an array of results of the field's type */
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
	/* table readers and value offsets follow; unused here */
};

struct init_input {
	const char *config;
	void *owner;
	/* more members follow; unused here */
};

#define PAYLOAD_MAX 64
#define EVENT_MAX (sizeof(struct event_header) + 8 + 4 + PAYLOAD_MAX)

struct state {
	char error[256];
	uint64_t count;
	int bad_batch, fail_next, fail_extract;
	/* extraction results live until the next call */
	uint64_t u64_out[4];
	uint32_t bool_out[4];
	const char *str_out[4];
	char str_buf[4][PAYLOAD_MAX + 16];
	char render[PAYLOAD_MAX + 32];
};

struct instance {
	uint64_t next;
	uint8_t buf[EVENT_MAX];
	struct event_header *batch[1];
};

static int config_flag(const char *config, const char *key)
{
	char pattern[64];
	snprintf(pattern, sizeof(pattern), "\"%s\":true", key);
	return config && strstr(config, pattern) != NULL;
}

const char *plugin_get_required_api_version(void) { return "3.0.0"; }
const char *plugin_get_name(void) { return "ctest"; }
const char *plugin_get_version(void) { return "0.2.0"; }
const char *plugin_get_description(void) { return "C test plugin"; }
const char *plugin_get_contact(void) { return "peregrine tests"; }
uint32_t plugin_get_id(void) { return 999; }
const char *plugin_get_event_source(void) { return "ctest"; }

const char *plugin_get_init_schema(uint32_t *schema_type)
{
	*schema_type = 1; /* JSON */
	return "{\"type\":\"object\",\"additionalProperties\":false,"
	       "\"properties\":{\"count\":{\"type\":\"integer\",\"minimum\":0},"
	       "\"fail_init\":{\"type\":\"boolean\"},\"bad_batch\":{\"type\":\"boolean\"},"
	       "\"fail_next\":{\"type\":\"boolean\"},\"fail_extract\":{\"type\":\"boolean\"}}}";
}

void *plugin_init(const struct init_input *in, rc_t *rc)
{
	struct state *s = calloc(1, sizeof(*s));
	const char *count;

	if (!s) {
		*rc = RC_FAILURE;
		return NULL;
	}
	if (config_flag(in->config, "fail_init")) {
		snprintf(s->error, sizeof(s->error), "ctest refuses to start: fail_init is set");
		*rc = RC_FAILURE;
		return s;
	}
	s->count = 3;
	count = in->config ? strstr(in->config, "\"count\":") : NULL;
	if (count)
		s->count = strtoull(count + 8, NULL, 10);
	s->bad_batch = config_flag(in->config, "bad_batch");
	s->fail_next = config_flag(in->config, "fail_next");
	s->fail_extract = config_flag(in->config, "fail_extract");
	*rc = RC_SUCCESS;
	return s;
}

void plugin_destroy(struct state *s) { free(s); }
const char *plugin_get_last_error(struct state *s) { return s->error; }

const char *plugin_list_open_params(struct state *s, rc_t *rc)
{
	(void)s;
	*rc = RC_SUCCESS;
	return "[{\"value\":\"start\",\"desc\":\"count from the start\"}]";
}

struct instance *plugin_open(struct state *s, const char *params, rc_t *rc)
{
	struct instance *i;

	if (params && strcmp(params, "refuse") == 0) {
		snprintf(s->error, sizeof(s->error), "cannot open '%s'", params);
		*rc = RC_FAILURE;
		return NULL;
	}
	i = calloc(1, sizeof(*i));
	*rc = i ? RC_SUCCESS : RC_FAILURE;
	return i;
}

void plugin_close(struct state *s, struct instance *i)
{
	(void)s;
	free(i);
}

rc_t plugin_next_batch(struct state *s, struct instance *i, uint32_t *nevts,
		       struct event_header ***evts)
{
	struct event_header *h = (struct event_header *)i->buf;
	uint8_t *params = i->buf + sizeof(*h);
	uint32_t id = 0; /* 0: the host fills in the plugin's id */
	uint32_t four = 4, plen;
	char payload[PAYLOAD_MAX];

	*nevts = 0;
	if (s->fail_next) {
		snprintf(s->error, sizeof(s->error), "the ctest stream broke");
		return RC_FAILURE;
	}
	if (i->next >= s->count)
		return RC_EOF;
	i->next++;
	plen = (uint32_t)snprintf(payload, sizeof(payload), "msg %llu",
				  (unsigned long long)i->next);
	h->ts = 1700000000000000000ULL + i->next;
	h->tid = (uint64_t)-1;
	h->type = 322;
	h->nparams = 2;
	h->len = (uint32_t)(sizeof(*h) + 8 + 4 + plen);
	memcpy(params, &four, 4);
	memcpy(params + 4, &plen, 4);
	if (s->bad_batch) {
		uint32_t lie = plen + 1000;
		memcpy(params + 4, &lie, 4);
	}
	memcpy(params + 8, &id, 4);
	memcpy(params + 12, payload, plen);
	i->batch[0] = h;
	*evts = i->batch;
	*nevts = 1;
	return RC_SUCCESS;
}

const char *plugin_get_progress(struct state *s, struct instance *i, uint32_t *pct)
{
	*pct = s->count ? (uint32_t)(i->next * 10000 / s->count) : 10000;
	return "";
}

/* The payload of a plugin event: after the header, two u32 lengths and
 * the u32 plugin id. */
static const char *payload_of(const struct event_header *h, uint32_t *len)
{
	const uint8_t *p = (const uint8_t *)h + sizeof(*h);
	memcpy(len, p + 4, 4);
	return (const char *)p + 12;
}

/* The payload is "msg N" and is not NUL-terminated: the event ends
 * right after it, so the digits are read within its length only. */
static uint64_t number_of(const char *payload, uint32_t len)
{
	uint64_t number = 0;
	uint32_t i;

	for (i = 4; i < len && payload[i] >= '0' && payload[i] <= '9'; i++)
		number = number * 10 + (uint64_t)(payload[i] - '0');
	return number;
}

const char *plugin_event_to_string(struct state *s, const struct event_input *in)
{
	uint32_t len;
	const char *payload = payload_of(in->evt, &len);
	snprintf(s->render, sizeof(s->render), "ctest: %.*s", (int)len, payload);
	return s->render;
}

const char *plugin_get_extract_event_sources(void) { return "[\"ctest\"]"; }

const char *plugin_get_fields(void)
{
	return "["
	       "{\"type\":\"uint64\",\"name\":\"ctest.num\",\"desc\":\"the event's number in its stream\"},"
	       "{\"type\":\"string\",\"name\":\"ctest.msg\",\"desc\":\"the payload\"},"
	       "{\"type\":\"bool\",\"name\":\"ctest.even\",\"desc\":\"whether the number is even\"},"
	       "{\"type\":\"string\",\"name\":\"ctest.words\",\"isList\":true,\"desc\":\"the payload's words\"},"
	       "{\"type\":\"uint64\",\"name\":\"ctest.times\",\"arg\":{\"isRequired\":true,\"isIndex\":true},\"desc\":\"the number times the index\"},"
	       "{\"type\":\"string\",\"name\":\"ctest.echo\",\"arg\":{\"isRequired\":true,\"isKey\":true},\"desc\":\"the key, echoed\"}"
	       "]";
}

rc_t plugin_extract_fields(struct state *s, const struct event_input *evt,
			   const struct extract_input *in)
{
	uint32_t f, len;
	const char *payload = payload_of(evt->evt, &len);
	uint64_t number = number_of(payload, len);

	if (s->fail_extract) {
		snprintf(s->error, sizeof(s->error), "ctest cannot extract");
		return RC_FAILURE;
	}
	for (f = 0; f < in->num_fields; f++) {
		struct extract_field *x = &in->fields[f];
		x->res_len = 1;
		switch (x->field_id) {
		case 0:
			s->u64_out[0] = number;
			x->res = s->u64_out;
			break;
		case 1:
			snprintf(s->str_buf[0], sizeof(s->str_buf[0]), "%.*s", (int)len, payload);
			s->str_out[0] = s->str_buf[0];
			x->res = s->str_out;
			break;
		case 2:
			s->bool_out[0] = number % 2 == 0;
			x->res = s->bool_out;
			break;
		case 3: /* "msg N" -> ["msg", "N"] */
			snprintf(s->str_buf[1], sizeof(s->str_buf[1]), "msg");
			snprintf(s->str_buf[2], sizeof(s->str_buf[2]), "%llu", (unsigned long long)number);
			s->str_out[0] = s->str_buf[1];
			s->str_out[1] = s->str_buf[2];
			x->res = s->str_out;
			x->res_len = 2;
			break;
		case 4:
			s->u64_out[0] = number * x->arg_index;
			x->res = s->u64_out;
			break;
		case 5:
			snprintf(s->str_buf[3], sizeof(s->str_buf[3]), "%s", x->arg_key ? x->arg_key : "");
			s->str_out[0] = s->str_buf[3];
			x->res = s->str_out;
			break;
		default:
			x->res_len = 0;
		}
	}
	return RC_SUCCESS;
}
