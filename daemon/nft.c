/* daemon/nft.c - see nft.h. */
#include <dlfcn.h>
#include <malloc.h>
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
	struct nft_ctx *(*ctx_new)(uint32_t flags);
	void (*ctx_free)(struct nft_ctx *ctx);
	int (*buffer_output)(struct nft_ctx *ctx);
	int (*buffer_error)(struct nft_ctx *ctx);
	const char *(*get_error_buffer)(struct nft_ctx *ctx);
	int (*run_cmd_from_buffer)(struct nft_ctx *nft, const char *buf);
} nft;

static void *handle;

/* Load libnftables; -1 with a logged reason. */
static int nft_load(const char *who)
{
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
	handle = h;
	return 0;
}

static void nft_unload(void)
{
	dlclose(handle);
	handle = NULL;
	memset(&nft, 0, sizeof(nft));
	/* what the context allocated goes back to the system, not to our heap */
	malloc_trim(0);
}

int nft_run_once(const char *who, const char *cmd)
{
	if (nft_load(who) < 0)
		return -1;
	int rc = -1;
	struct nft_ctx *ctx = nft.ctx_new(NFT_CTX_DEFAULT);
	if (ctx == NULL) {
		log_err("%s: cannot make an nftables context", who);
	} else {
		/* messages go to a buffer, not to the daemon's stdout/stderr */
		nft.buffer_output(ctx);
		nft.buffer_error(ctx);
		rc = nft.run_cmd_from_buffer(ctx, cmd);
		if (rc != 0) {
			const char *why = nft.get_error_buffer(ctx);
			log_err("%s: nftables: %s", who, why && *why ? why : "command failed");
			rc = -1;
		}
		nft.ctx_free(ctx);
	}
	nft_unload();
	return rc;
}
