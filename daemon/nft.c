/* daemon/nft.c - see nft.h. */
#include <dlfcn.h>
#include <nftables/libnftables.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/carpd.h"
#include "daemon/nft.h"

#define NFT_SONAME "libnftables.so.1"

/* the libnftables functions carpd uses, resolved at run time */
static struct {
	bool loaded;
	struct nft_ctx *(*ctx_new)(uint32_t flags);
	void (*ctx_free)(struct nft_ctx *ctx);
	int (*buffer_output)(struct nft_ctx *ctx);
	int (*buffer_error)(struct nft_ctx *ctx);
	const char *(*get_error_buffer)(struct nft_ctx *ctx);
	int (*run_cmd_from_buffer)(struct nft_ctx *nft, const char *buf);
} nft;

struct nft_runner {
	struct nft_ctx *ctx;
	char who[32];
};

/* Load libnftables once (it stays loaded); -1 with a logged reason. */
static int nft_load(const char *who)
{
	if (nft.loaded)
		return 0;
	void *h = dlopen(NFT_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		log_err("%s: cannot load %s (Debian: apt-get install libnftables1): %s", who,
			NFT_SONAME, dlerror());
		return -1;
	}
	*(void **)&nft.ctx_new = dlsym(h, "nft_ctx_new");
	*(void **)&nft.ctx_free = dlsym(h, "nft_ctx_free");
	*(void **)&nft.buffer_output = dlsym(h, "nft_ctx_buffer_output");
	*(void **)&nft.buffer_error = dlsym(h, "nft_ctx_buffer_error");
	*(void **)&nft.get_error_buffer = dlsym(h, "nft_ctx_get_error_buffer");
	*(void **)&nft.run_cmd_from_buffer = dlsym(h, "nft_run_cmd_from_buffer");
	if (!nft.ctx_new || !nft.ctx_free || !nft.buffer_output || !nft.buffer_error ||
	    !nft.get_error_buffer || !nft.run_cmd_from_buffer) {
		log_err("%s: %s lacks a function carpd needs", who, NFT_SONAME);
		dlclose(h);
		return -1;
	}
	nft.loaded = true;
	return 0;
}

struct nft_runner *nft_runner_new(const char *who)
{
	if (nft_load(who) < 0)
		return NULL;
	struct nft_runner *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	snprintf(r->who, sizeof(r->who), "%s", who);
	r->ctx = nft.ctx_new(NFT_CTX_DEFAULT);
	if (r->ctx == NULL) {
		log_err("%s: cannot make an nftables context", who);
		free(r);
		return NULL;
	}
	/* messages go to a buffer, not to the daemon's stdout/stderr */
	nft.buffer_output(r->ctx);
	nft.buffer_error(r->ctx);
	return r;
}

void nft_runner_free(struct nft_runner *r)
{
	if (r == NULL)
		return;
	nft.ctx_free(r->ctx);
	free(r);
}

int nft_runner_run(struct nft_runner *r, const char *cmd)
{
	int rc = nft.run_cmd_from_buffer(r->ctx, cmd);
	if (rc != 0) {
		const char *why = nft.get_error_buffer(r->ctx);
		log_err("%s: nftables: %s", r->who, why && *why ? why : "command failed");
		return -1;
	}
	return 0;
}

int nft_run_once(const char *who, const char *cmd)
{
	struct nft_runner *r = nft_runner_new(who);
	if (r == NULL)
		return -1;
	int rc = nft_runner_run(r, cmd);
	nft_runner_free(r);
	return rc;
}
