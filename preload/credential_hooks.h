// setuid and its siblings, interposed so that memtide's thread steps aside while glibc applies a credential
// change to every thread (see credential_hooks.cc).
#ifndef MEMTIDE_PRELOAD_CREDENTIAL_HOOKS_H_
#define MEMTIDE_PRELOAD_CREDENTIAL_HOOKS_H_

namespace memtide::internal {

// fork() child: a fork taken while another thread was changing credentials leaves that thread's lock held in
// the child, where nobody would release it.
void ResetCredentialHooksInChild();

}  // namespace memtide::internal

#endif  // MEMTIDE_PRELOAD_CREDENTIAL_HOOKS_H_
