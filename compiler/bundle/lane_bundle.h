/*
 * lane_bundle.h -- liblane-bundle: policy bundles for hosts.
 *
 * A bundle (`lane build`) is one file that holds a compiled policy (the
 * .lanec bytes), every source file it was compiled from (the policy, its
 * imports and standard-library modules, its tests and the runtime
 * snapshots they read) and a manifest (revision, digests, lane version),
 * optionally signed with Ed25519. Before activating one, a host opens it
 * -- structure, digests and, given a public key, the signature -- runs
 * its tests as `lane build` did, and takes the program:
 *
 *   unsigned char pk[32];
 *   lane_bundle *b = NULL;
 *   lane_error err;
 *   char report[16384];
 *   if (lane_key_load_public("release.pub", pk, &err) != LANE_OK ||
 *       lane_bundle_read_file("policy.bundle", pk, &b, &err) != LANE_OK)
 *     ... refuse it: err.message says why ...
 *   int failed = lane_bundle_test(b, report, sizeof report, &err);
 *   if (failed != 0) ... refuse it: report (failed > 0) or err.message (< 0) ...
 *   lane_program *p = lane_bundle_take_program(b);   ... swap it in ...
 *   lane_bundle_free(b);
 *
 * The file format is documented in compiler/bundle/README.md; every
 * length in it is bounded and checked, and a file that breaks any rule is
 * refused with the reason, never trusted.
 *
 * Errors: each function that can fail returns a lane_status (lane.h) and
 * fills the caller's lane_error: LANE_EFORMAT for a malformed, corrupted,
 * altered, unsigned-when-a-key-is-given or wrongly signed bundle or key
 * file, LANE_EVERSION for a bundle format this library does not read,
 * LANE_EARG for bad arguments or an unreadable file, LANE_ENOMEM. Nothing
 * here prints, exits or aborts.
 *
 * Threads: an open bundle is immutable; its accessors and lane_bundle_test
 * may be called from several threads at once (each test run compiles and
 * decides on state of its own).
 *
 * Linking: build/liblane-bundle.a is one object whose only global symbols
 * are the functions below (the compiler inside it is hidden); it needs
 * liblane, jansson, libsodium and libm:
 *   cc host.c $(pkg-config --cflags --libs lane-bundle)
 * libsodium is initialised by the calls that use it (sodium_init is
 * idempotent and thread-safe).
 */
#ifndef LANE_BUNDLE_H
#define LANE_BUNDLE_H

#include <stddef.h>

#include "lane.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LANE_BUNDLE_VERSION   1            /* bundle format version read and written */
#define LANE_BUNDLE_MAX_BYTES (256u << 20) /* bytes of a bundle file */
#define LANE_BUNDLE_KEY_ID    16           /* hex digits of a key id */

typedef struct lane_bundle lane_bundle;

/* Parses and checks the n bytes of a bundle (copied: the caller keeps
 * bytes) and loads its program with lane_load. pubkey (32 bytes, see
 * lane_key_load_public) or NULL: when given, the bundle must carry a valid
 * signature by that key -- an unsigned bundle, a signature by another key
 * or one that does not verify is refused; without it a signature is only
 * reported (lane_bundle_signed). On LANE_OK *out is a new bundle (free it
 * with lane_bundle_free); otherwise *out is NULL and err says why. */
LANE_API int lane_bundle_open(const void *bytes, size_t n, const unsigned char *pubkey,
                              lane_bundle **out, lane_error *err);
/* lane_bundle_open on the contents of the file at path (a regular file of
 * at most LANE_BUNDLE_MAX_BYTES). */
LANE_API int lane_bundle_read_file(const char *path, const unsigned char *pubkey,
                                   lane_bundle **out, lane_error *err);

/* The manifest's revision ("v42", or the first 12 hex digits of the
 * source digest). Borrowed: lives as long as b. */
LANE_API const char *lane_bundle_revision(const lane_bundle *b);
/* The manifest, the JSON text the bundle holds, NUL-ended. Borrowed. */
LANE_API const char *lane_bundle_manifest(const lane_bundle *b);
/* The bundle's program, loaded and verified at open. Borrowed: lives as
 * long as b, or until lane_bundle_take_program. */
LANE_API const lane_program *lane_bundle_program(const lane_bundle *b);
/* Hands the program to the caller, who frees it with lane_program_free;
 * b keeps its other contents. NULL if it was taken already. */
LANE_API lane_program *lane_bundle_take_program(lane_bundle *b);

/* Whether b is signed: LANE_BUNDLE_UNSIGNED, LANE_BUNDLE_SIGNED (signed;
 * opened without a key, so not verified) or LANE_BUNDLE_VERIFIED (its
 * signature verified with the key given to lane_bundle_open). */
enum lane_bundle_signature {
  LANE_BUNDLE_UNSIGNED = 0,
  LANE_BUNDLE_SIGNED   = 1,
  LANE_BUNDLE_VERIFIED = 2
};
LANE_API int lane_bundle_signed(const lane_bundle *b);
/* The id of the key that signed b (LANE_BUNDLE_KEY_ID hex digits), or
 * NULL when unsigned. Borrowed. */
LANE_API const char *lane_bundle_key_id(const lane_bundle *b);

/* Runs the bundle's tests as `lane build` ran them: compiles its sources
 * from the bundle alone (nothing is read from disk), requires the result
 * to be byte for byte the bundled program (else the reason names the lane
 * version that built the bundle and this one), then runs every test block
 * against the bundled program, snapshots read from the bundle. Returns
 * the number of failed tests (0: all passed), or -1 with err filled when
 * they could not be run (the sources do not compile, the program differs,
 * no memory). A readable report (one line per test, a failure with what
 * it saw and the decision's explanation, then a summary; for -1 the
 * reason and any compiler diagnostics) goes to report, cut to cap - 1
 * bytes and then ending in a line that says so; report may be NULL when
 * cap is 0. */
LANE_API int lane_bundle_test(const lane_bundle *b, char *report, size_t cap, lane_error *err);

/* Frees b (and its program unless taken). NULL is ignored. */
LANE_API void lane_bundle_free(lane_bundle *b);

/* Reads a public key file (`lane keygen` writes NAME.pub): one line,
 * "lane-ed25519-public " and 64 hex digits. LANE_OK with the 32 key bytes
 * in pk, LANE_EARG when the file cannot be read, or LANE_EFORMAT saying
 * what is wrong with it (a secret key given instead is named as such). */
LANE_API int lane_key_load_public(const char *path, unsigned char pk[32], lane_error *err);

#ifdef __cplusplus
}
#endif

#endif /* LANE_BUNDLE_H */
