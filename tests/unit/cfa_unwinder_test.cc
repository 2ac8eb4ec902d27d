// The cached-rule stack walk (tracer/cfa_unwinder.h): its .eh_frame reading on hand-built sections with known
// answers, and its stacks against libunwind's on real ones (recursion, libc callbacks, frame-pointer frames,
// threads on their own and on user-supplied stacks), and what it refuses (signal frames, foreign stacks).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "cfa_unwinder.h"

#include <alloca.h>
#include <doctest/doctest.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "stack_capture.h"

namespace memtide::internal {
namespace {

// --- Hand-built .eh_frame_hdr + .eh_frame ------------------------------------------------------------------

// One CIE and one FDE covering [code, code + 0x100), after a binary-search header with one entry. `code` is
// an address the rules describe; nothing is ever executed there.
class Sections {
 public:
  Sections(const std::vector<uint8_t>& cie_instructions, const std::vector<uint8_t>& fde_instructions,
           const char* augmentation = "zR", uint8_t header_version = 1, uint8_t table_encoding = 0x3b) {
    bytes_.resize(4096);
    uint8_t* base = bytes_.data();
    code_ = reinterpret_cast<uintptr_t>(base) + 0x10000;
    // CIE at 64.
    size_t at = 64;
    const size_t cie = at;
    std::vector<uint8_t> body = {0, 0, 0, 0, 1};  // id 0, version 1
    for (const char* c = augmentation; *c != '\0'; ++c) body.push_back(static_cast<uint8_t>(*c));
    body.push_back(0);
    body.push_back(1);     // code alignment
    body.push_back(0x78);  // data alignment -8
    body.push_back(16);    // return address register
    body.push_back(1);     // augmentation data length
    body.push_back(0x1b);  // R: pcrel | sdata4
    body.insert(body.end(), cie_instructions.begin(), cie_instructions.end());
    while ((body.size() + 4) % 8 != 0) body.push_back(0);  // DW_CFA_nop
    Put32(at, static_cast<uint32_t>(body.size()));
    memcpy(base + at + 4, body.data(), body.size());
    at += 4 + body.size();
    // FDE.
    const size_t fde = at;
    std::vector<uint8_t> fde_body(4 + 4 + 4 + 1);
    fde_body.insert(fde_body.end(), fde_instructions.begin(), fde_instructions.end());
    while ((fde_body.size() + 4) % 8 != 0) fde_body.push_back(0);
    Put32(at, static_cast<uint32_t>(fde_body.size()));
    memcpy(base + at + 4, fde_body.data(), fde_body.size());
    Put32(at + 4, static_cast<uint32_t>(at + 4 - cie));                            // CIE pointer
    Put32(at + 8, static_cast<uint32_t>(code_ - reinterpret_cast<uintptr_t>(base + at + 8)));  // pc_begin, pcrel
    Put32(at + 12, 0x100);                                                         // pc_range
    base[at + 16] = 0;                                                             // augmentation data length
    // Header at 0: version, eh_frame_ptr (pcrel sdata4), fde_count (udata4), table (datarel sdata4).
    base[0] = header_version;
    base[1] = 0x1b;
    base[2] = 0x03;
    base[3] = table_encoding;
    Put32(4, static_cast<uint32_t>(cie - 4));
    Put32(8, 1);
    Put32(12, static_cast<uint32_t>(code_ - reinterpret_cast<uintptr_t>(base)));
    Put32(16, static_cast<uint32_t>(fde));
  }

  CfaRule Rule(uintptr_t offset) const { return RuleFromEhFrameHeader(bytes_.data(), code_ + offset); }

 private:
  void Put32(size_t at, uint32_t value) { memcpy(bytes_.data() + at, &value, 4); }

  std::vector<uint8_t> bytes_;
  uintptr_t code_ = 0;
};

// x86-64's usual CIE: CFA = RSP + 8, return address at CFA - 8.
const std::vector<uint8_t> kCie = {0x0c, 7, 8, 0x90, 1};
// push %rbp (1 byte); mov %rsp,%rbp (3 bytes); ...; at 0x20 remember, leave-like epilogue; at 0x22 restore.
const std::vector<uint8_t> kFramePointerFde = {
    0x41, 0x0e, 16, 0x86, 2,  // advance 1: CFA offset 16, RBP saved at CFA - 16
    0x43, 0x0d, 6,            // advance 3: CFA register RBP
    0x5c, 0x0a, 0x0c, 7, 8,   // advance 0x1c: remember state; CFA = RSP + 8
    0x42, 0x0b,               // advance 2: restore state
};

TEST_CASE("rules from a frame-pointer function: prologue, body, epilogue, remembered state") {
  const Sections sections(kCie, kFramePointerFde);
  CfaRule rule = sections.Rule(0);
  CHECK(rule.kind == CfaRule::kFromSp);
  CHECK(rule.cfa_offset == 8);
  CHECK(rule.saved_bp_offset == 0);
  rule = sections.Rule(1);
  CHECK(rule.kind == CfaRule::kFromSp);
  CHECK(rule.cfa_offset == 16);
  CHECK(rule.saved_bp_offset == -16);
  rule = sections.Rule(4);
  CHECK(rule.kind == CfaRule::kFromBp);
  CHECK(rule.cfa_offset == 16);
  CHECK(rule.saved_bp_offset == -16);
  rule = sections.Rule(0x20);
  CHECK(rule.kind == CfaRule::kFromSp);
  CHECK(rule.cfa_offset == 8);
  CHECK(rule.saved_bp_offset == -16);  // remember_state keeps the RBP rule
  rule = sections.Rule(0x22);
  CHECK(rule.kind == CfaRule::kFromBp);
  CHECK(rule.cfa_offset == 16);
  CHECK(sections.Rule(0xff).kind == CfaRule::kFromBp);
  CHECK(sections.Rule(0x100).kind == CfaRule::kUnsupported);  // past the FDE: no unwind information
}

TEST_CASE("what the rules cannot express is refused, never approximated") {
  // DW_CFA_def_cfa_expression (PLT stubs): CFA computed by a DWARF expression.
  CHECK(Sections(kCie, {0x0f, 2, 0x77, 8}).Rule(0).kind == CfaRule::kUnsupported);
  // The CFA in another register (R12).
  CHECK(Sections(kCie, {0x0d, 12}).Rule(0).kind == CfaRule::kUnsupported);
  // RBP recovered from a register or by an expression.
  CHECK(Sections(kCie, {0x09, 6, 3}).Rule(0).kind == CfaRule::kUnsupported);
  CHECK(Sections(kCie, {0x10, 6, 1, 0x30}).Rule(0).kind == CfaRule::kUnsupported);
  // The return address elsewhere than CFA - 8.
  CHECK(Sections(kCie, {0x90, 2}).Rule(0).kind == CfaRule::kUnsupported);
  // A signal frame (glibc's __restore_rt): libunwind's job.
  CHECK(Sections(kCie, {}, "zRS").Rule(0).kind == CfaRule::kUnsupported);
  // An opcode this reader does not know, a restore_state with nothing remembered.
  CHECK(Sections(kCie, {0x3f}).Rule(0).kind == CfaRule::kUnsupported);
  CHECK(Sections(kCie, {0x0b}).Rule(0).kind == CfaRule::kUnsupported);
  // Headers of another version or table encoding.
  CHECK(Sections(kCie, {}, "zR", 2).Rule(0).kind == CfaRule::kUnsupported);
  CHECK(Sections(kCie, {}, "zR", 1, 0x1b).Rule(0).kind == CfaRule::kUnsupported);
  CHECK(RuleFromEhFrameHeader(nullptr, 0x1000).kind == CfaRule::kUnsupported);
}

TEST_CASE("an undefined return address ends the stack; instructions after the target row do not apply") {
  CHECK(Sections(kCie, {0x07, 16}).Rule(0).kind == CfaRule::kOutermost);
  const Sections later(kCie, {0x48, 0x0e, 32});  // advance 8, then CFA offset 32
  CHECK(later.Rule(7).cfa_offset == 8);
  CHECK(later.Rule(8).cfa_offset == 32);
}

// --- Real stacks against libunwind -------------------------------------------------------------------------

CfaUnwinder g_unwinder;

struct Walks {
  std::vector<uintptr_t> fast;  // empty with refused = true when the walk declined
  bool refused = false;
  std::vector<uintptr_t> slow;
};

__attribute__((noinline)) Walks BothWalks() {
  Walks walks;
  uintptr_t fast[64];
  void* slow[65];
  const int fast_depth = g_unwinder.Capture(fast, 64);
  const int slow_depth = unw_backtrace(slow, 65);
  walks.refused = fast_depth < 0;
  if (fast_depth > 0) walks.fast.assign(fast, fast + fast_depth);
  for (int i = 0; i < slow_depth; ++i) walks.slow.push_back(reinterpret_cast<uintptr_t>(slow[i]));
  asm volatile("" ::: "memory");  // keeps the calls above out of tail position
  return walks;
}

// The walk's frames must be libunwind's from its first frame on, to the end (or 64 frames).
void CheckAgrees(const Walks& walks) {
  REQUIRE_FALSE(walks.refused);
  REQUIRE(walks.fast.size() >= 2);
  const auto start = std::find(walks.slow.begin(), walks.slow.end(), walks.fast[0]);
  REQUIRE(start != walks.slow.end());
  const std::vector<uintptr_t> slow(start, walks.slow.end());
  const size_t compared = std::min(slow.size(), walks.fast.size());
  for (size_t i = 0; i < compared; ++i) {
    INFO("frame " << i);
    CHECK(walks.fast[i] == slow[i]);
  }
  // libunwind may list one more outermost frame (it stops one step later at _start/clone).
  CHECK(walks.fast.size() + 1 >= std::min<size_t>(slow.size(), 64));
}

__attribute__((noinline)) Walks Recurse(int depth) {
  if (depth == 0) return BothWalks();
  Walks walks = Recurse(depth - 1);
  asm volatile("" ::: "memory");
  return walks;
}

TEST_CASE("recursion of every depth up to past the frame limit: the same frames as libunwind") {
  for (int depth = 0; depth < 70; depth += 7) {
    INFO("depth " << depth);
    CheckAgrees(Recurse(depth));
  }
}

// alloca makes GCC address the frame through RBP (CFA = RBP + 16 in the body).
__attribute__((noinline)) Walks WithFramePointer(size_t bytes) {
  char* buffer = static_cast<char*>(alloca(bytes));
  memset(buffer, 1, bytes);
  Walks walks = BothWalks();
  asm volatile("" : : "r"(buffer) : "memory");
  return walks;
}

TEST_CASE("frames addressed through RBP (alloca)") {
  CheckAgrees(WithFramePointer(100));
  CheckAgrees(WithFramePointer(5000));
}

Walks g_from_callback;
int CompareAndWalk(const void* a, const void* b) {
  if (g_from_callback.slow.empty()) g_from_callback = BothWalks();
  return *static_cast<const int*>(a) - *static_cast<const int*>(b);
}

TEST_CASE("through libc: a qsort comparator") {
  int values[] = {5, 3, 9, 1, 7};
  qsort(values, 5, sizeof(int), CompareAndWalk);
  CheckAgrees(g_from_callback);
}

void* WalkOnThread(void* out) {
  *static_cast<Walks*>(out) = Recurse(3);
  return nullptr;
}

TEST_CASE("threads: glibc's stacks and a stack the program supplies") {
  Walks walks;
  pthread_t thread;
  REQUIRE(pthread_create(&thread, nullptr, WalkOnThread, &walks) == 0);
  pthread_join(thread, nullptr);
  CheckAgrees(walks);

  constexpr size_t kStack = 256 * 1024;
  void* stack = aligned_alloc(4096, kStack);
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setstack(&attributes, stack, kStack);
  Walks own;
  REQUIRE(pthread_create(&thread, &attributes, WalkOnThread, &own) == 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attributes);
  free(stack);
  CheckAgrees(own);
}

Walks g_in_handler;
void Handler(int) { g_in_handler = BothWalks(); }

TEST_CASE("a signal handler's stack crosses a signal frame: refused (libunwind does it)") {
  struct sigaction action {};
  action.sa_handler = Handler;
  sigaction(SIGUSR1, &action, nullptr);
  raise(SIGUSR1);
  CHECK(g_in_handler.refused);

  // On an alternate signal stack the stack pointer is not on the thread's stack at all.
  stack_t alternate{};
  std::vector<char> memory(64 * 1024);
  alternate.ss_sp = memory.data();
  alternate.ss_size = memory.size();
  REQUIRE(sigaltstack(&alternate, nullptr) == 0);
  action.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR1, &action, nullptr);
  g_in_handler = Walks{};
  raise(SIGUSR1);
  CHECK(g_in_handler.refused);
  alternate.ss_flags = SS_DISABLE;
  sigaltstack(&alternate, nullptr);
  signal(SIGUSR1, SIG_DFL);
}

TEST_CASE("rules are read once per return address, and again after Invalidate") {
  uint64_t reads[4] = {};
  for (int round = 0; round < 4; ++round) {
    if (round == 2) g_unwinder.Invalidate();
    Recurse(2);  // one call site, so the same return addresses every round
    reads[round] = g_unwinder.rules_read();
  }
  CHECK(reads[1] == reads[0]);
  CHECK(reads[2] > reads[1]);
  CHECK(reads[3] == reads[2]);
}

// The memo: one thread's last walk, recalled when the stack is the same one.
WalkMemo g_memo;

__attribute__((noinline)) int CaptureWithMemo(uint32_t* remembered) {
  uintptr_t frames[64];
  const int depth = g_unwinder.Capture(frames, 64, &g_memo, remembered);
  asm volatile("" ::: "memory");
  return depth;
}

__attribute__((noinline)) int FromFirst(uint32_t* remembered) {
  const int depth = CaptureWithMemo(remembered);
  asm volatile("" ::: "memory");
  return depth;
}

__attribute__((noinline)) int FromSecond(uint32_t* remembered) {
  const int depth = CaptureWithMemo(remembered);
  asm volatile("" ::: "memory");
  return depth;
}

TEST_CASE("a memo recalls the same stack, and only the same stack") {
  using Capturer = int (*)(uint32_t*);
  // Every capture below comes from the one call in this loop: the stacks differ only in the return address
  // into FromFirst or FromSecond. After each walk the test stores a result, as the tracer stores the depot id.
  struct Step {
    Capturer capture;
    bool recalled;     // expected
    uint32_t result;   // stored after a walk
    bool invalidate;   // Invalidate() first
  };
  const Step steps[] = {
      {FromFirst, false, 11, false}, {FromFirst, true, 0, false},  {FromFirst, true, 0, false},
      {FromSecond, false, 22, false}, {FromSecond, true, 0, false}, {FromFirst, false, 0, false},
      {FromFirst, false, 33, false},  // nothing was stored after the last walk: no recall
      {FromFirst, true, 0, false},     {FromFirst, false, 44, true},  {FromFirst, true, 0, false},
  };
  uint32_t expected = 0;
  int step_index = 0;
  for (const Step& step : steps) {
    INFO("step " << step_index++);
    if (step.invalidate) g_unwinder.Invalidate();
    uint32_t remembered = 0;
    const int depth = step.capture(&remembered);
    if (step.recalled) {
      CHECK(depth == CfaUnwinder::kRemembered);
      CHECK(remembered == expected);
    } else {
      CHECK(depth > 0);
      if (step.result != 0) g_memo.result = step.result;
      expected = step.result;
    }
  }
}

}  // namespace
}  // namespace memtide::internal
