/* daemon/nft.h - running nftables commands from the daemon.
 *
 * libnftables, with libnftnl, libxtables, libjansson and libgmp behind it, is
 * loaded with dlopen() for each command and unloaded after it: resident, the
 * library and its context cost a carpd about 3.5 MiB (its idle footprint doubled),
 * and carpd runs a command only at start, at stop and when its tables must be put
 * back (defer mode, activity marks).
 */
#ifndef CARPD_NFT_H
#define CARPD_NFT_H

/* Run one command buffer (one transaction); 0, or -1 with the reason logged
 * under who's name. */
int nft_run_once(const char *who, const char *cmd);

#endif
