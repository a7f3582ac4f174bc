/* daemon/nft.h - running nftables commands from the daemon.
 *
 * libnftables, with libnftnl, libxtables, libjansson and libgmp behind it, is
 * loaded with dlopen() the first time a command runs (defer mode, activity
 * marks): linked in, it cost every carpd about 0.6 MiB of resident memory, also
 * when neither feature is in use.
 */
#ifndef CARPD_NFT_H
#define CARPD_NFT_H

struct nft_runner;

/* A context for commands run again and again (it keeps libnftables' context
 * and what it parsed at start); NULL with a logged reason. who names the
 * feature in messages. */
struct nft_runner *nft_runner_new(const char *who);
void nft_runner_free(struct nft_runner *r);
/* Run one command buffer (one transaction); 0, or -1 with the reason logged. */
int nft_runner_run(struct nft_runner *r, const char *cmd);
/* Once: a context of its own, used and freed. */
int nft_run_once(const char *who, const char *cmd);

#endif
