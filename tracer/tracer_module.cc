// libmemtide_tracer.so's entry point and the tracer it returns: the preload dlopens this module only when
// MEMTIDE_TRACE is sample or full (DESIGN.md decision 8) and calls memtide_tracer_start once; the table of
// functions it gets back (tracer_module.h) is then called
//   - on_allocation / on_free: hot path, inside the program's malloc/free on any thread, under the preload's
//     reentrancy guard. Stack capture with no lock held, then a lock-free depot lookup, then one live-table
//     shard lock, under which the site change is parked in the shard's pending buffer (site_stats.h; a full
//     buffer is merged under its sites' locks, nested inside), then one atomic add on the total. No I/O
//     (except one log line if the tracer runs out of memory), no blocking.
//   - write_snapshot: the monitor thread or the caller of memtide_snapshot() (or the preload's descriptor
//     thread for them); at_exit: the exiting thread.
//     Both allocate freely and take the shard locks one at a time, so other threads keep allocating.
//   - before_fork / after_fork_*: around fork(), from the preload's fork handling.
//
// Lifetime: the tracer is created once and never destroyed. Threads may still allocate while the process
// exits (after at_exit, during static destruction), so nothing here may have a destructor that runs at exit:
// the tracer lives on the heap and the function table is plain data.
//
// C entry points never let an exception out: the hot entries are noexcept and catch at the boundary (the only
// throwing code they reach is the slow path that resolves a new stack's modules, which allocates).
#include "tracer_module.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "bookkeeping_queue.h"
#include "exit_cleanup_probe.h"
#include "large_stack.h"
#include "leak_text_child.h"
#include "leak_text_module.h"
#include "live_allocations.h"
#include "module_map.h"
#include "sampling.h"
#include "site_stats.h"
#include "spin_lock.h"
#include "stack_capture.h"
#include "stack_depot.h"
#include "throwaway_child.h"
#include "trace_writer.h"

namespace memtide::internal {
namespace {

// The probe's child normally ends in milliseconds; past this, a lock another thread held at the clone is
// keeping it (exit_cleanup_probe.h), and the exit should not wait longer.
constexpr int kExitCleanupTimeoutMs = 2000;

int64_t NowNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

void CopyText(const std::string& text, char* buffer, size_t size) {
  if (buffer == nullptr || size == 0) return;
  snprintf(buffer, size, "%s", text.c_str());
}

// The tracer module's own folder (where the preload found it), with a trailing '/', or "" if unknown.
std::string OwnFolder() {
  Dl_info info;
  if (dladdr(reinterpret_cast<const void*>(&NowNs), &info) == 0 || info.dli_fname == nullptr) return "";
  const std::string path = info.dli_fname;
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

class Tracer {
 public:
  explicit Tracer(const MemtideTracerConfig& config)
      : sample_mode_(config.mode == kMemtideTraceSample),
        mean_bytes_(config.sample_mean_bytes > 0 ? static_cast<double>(config.sample_mean_bytes) : 524288.0),
        leak_report_top_(config.leak_report_top),
        trace_file_(config.trace_file != nullptr ? config.trace_file : ""),
        suppressions_(config.suppressions != nullptr ? config.suppressions : ""),
        segment_dir_(config.segment_dir != nullptr && config.segment_dir[0] != '\0' ? config.segment_dir : "/dev/shm"),
        skip_begin_(config.skip_begin),
        skip_end_(config.skip_end),
        max_frames_(config.max_frames),
        fast_unwind_(config.fast_unwind != 0),
        log_line_(config.log_line),
        write_text_(config.write_text),
        dlclose_calls_(config.dlclose_calls),
        run_traced_(config.run_traced),
        bookkeeping_thread_(config.bookkeeping_thread != 0 && config.mode == kMemtideTraceFull),
        depot_(&modules_),
        sample_live_() {}

  // Once, before any other entry. Enters the loader; allocates.
  bool Start(std::string* error) {
    start_ns_ = NowNs();
    if (dlclose_calls_ != nullptr) dlclose_seen_.store(__atomic_load_n(dlclose_calls_, __ATOMIC_RELAXED));
    modules_.Refresh();
    std::string note;
    if (!capture_.Init(skip_begin_, skip_end_, max_frames_, fast_unwind_, error, &note)) return false;
    if (!note.empty()) Log("%s", note.c_str());
    if (run_traced_ != nullptr || leak_report_top_ > 0) PrepareThrowawayChildren();
    if (bookkeeping_thread_) {
      std::string why;
      if (!queue_.Enable(&ApplyQueuedRecords, this, &why)) {
        Log("tracing keeps its tables on the program's threads: %s", why.c_str());
      }
    }
    return true;
  }

  void Log(const char* format, ...) const __attribute__((format(printf, 2, 3))) {
    if (log_line_ == nullptr) return;
    char line[512];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof(line), format, args);
    va_end(args);
    log_line_(line);
  }

  // Everything from here to unw_backtrace is inlined into the exported entry (see StackCapture::Capture).
  __attribute__((always_inline)) int64_t OnAllocation(void* pointer, size_t requested, size_t usable,
                                                      MemtideTracerThread* thread, int* tracked) noexcept {
    *tracked = 0;
    try {
      if (!sample_mode_) {
        if (pointer != nullptr && !stopped_.load(std::memory_order_relaxed)) {
          *tracked = TrackFull(reinterpret_cast<uintptr_t>(pointer), requested, thread);
        }
        return 0;
      }
      const SampleDecision decision = DecideSample(&thread->rng_state, usable, mean_bytes_);
      if (decision.sample && pointer != nullptr && !stopped_.load(std::memory_order_relaxed)) {
        *tracked = TrackSample(reinterpret_cast<uintptr_t>(pointer), requested, usable, thread);
      }
      return decision.countdown;
    } catch (...) {
      Stop("an allocation failed while recording a new stack");
      return sample_mode_ ? NextCountdown(&thread->rng_state, mean_bytes_) : 0;
    }
  }

  // The removal and its site change under one live-table shard lock; then the total.
  int OnFree(void* pointer, MemtideTracerThread* thread) noexcept {
    const uintptr_t key = reinterpret_cast<uintptr_t>(pointer);
    if (key == 0) return 0;
    if (!sample_mode_) {
      if (queue_.Push(thread, BookkeepingRecord{key, 0, 0, 0})) return 1;
      const int found = ApplyFullFree(key, &thread->unflushed_bytes);
      FlushIfNothingElseWill(thread);
      return found;
    }
    int64_t total_delta = 0;
    SampleLiveValue value;
    const bool found = sample_live_.Remove(key, &value, [&](PendingSiteChanges& pending, const SampleLiveValue& v) {
      total_delta = RetireSample(pending, v, sites_.PeakVersion());
    });
    if (!found) return 0;
    sites_.LowerTotal(&thread->unflushed_bytes, total_delta);
    FlushIfNothingElseWill(thread);
    return 1;
  }

  // Drains the bookkeeping queue for the preload's bookkeeping thread (tracer_module.h).
  int64_t DrainBookkeeping() noexcept { return queue_.Drain(BookkeepingQueue::kBatch); }

  void OnThreadExit(MemtideTracerThread* thread) noexcept {
    queue_.Release(thread);
    sites_.FlushTotal(&thread->unflushed_bytes);
    delete static_cast<WalkMemo*>(thread->walk_memo);
    thread->walk_memo = nullptr;
  }

  int WriteSnapshot(const char* path_or_null, char* name, size_t name_size, char* message, size_t message_size,
                    MemtideTracerThread* thread) {
    sites_.FlushTotal(&thread->unflushed_bytes);
    SpinLockHolder hold(writer_lock_);
    const TraceContents contents = Collect(/*exit=*/false, -1);
    const TextSource text = [&contents](const ChunkSink& sink) { return WriteTrace(contents, sink); };
    const int64_t pid = getpid();
    if (path_or_null != nullptr) {
      const std::string path = path_or_null;
      const int error = WriteFileDirect(path, text, /*create_new=*/false);
      if (error != 0) {
        CopyText("cannot write the snapshot " + path + ": " + strerror(error), message, message_size);
        return error;
      }
      const size_t slash = path.rfind('/');
      CopyText(slash == std::string::npos ? path : path.substr(slash + 1), name, name_size);
      return 0;
    }
    int error = EEXIST;
    std::string file_name;
    for (int attempt = 0; attempt < 1000 && error == EEXIST; ++attempt) {
      const uint64_t number = snapshot_counter_.fetch_add(1, std::memory_order_relaxed) + 1;
      file_name = "memtide-snapshot." + std::to_string(pid) + "." + std::to_string(number) + ".json";
      error = WriteFileDirect(segment_dir_ + "/" + file_name, text, /*create_new=*/true);
    }
    if (error != 0) {
      CopyText("cannot write a snapshot in " + segment_dir_ + ": " + strerror(error), message, message_size);
      return error;
    }
    CopyText(file_name, name, name_size);
    return 0;
  }

  void AtExit(int32_t exit_code, MemtideTracerThread* thread) {
    sites_.FlushTotal(&thread->unflushed_bytes);
    SpinLockHolder hold(writer_lock_);
    if (exited_) return;
    exited_ = true;
    if (trace_file_.empty() && leak_report_top_ <= 0) return;  // nothing asked for: the exit costs nothing more
    // Deliberately never destroyed: the process is ending, and freeing hundreds of thousands of small objects
    // would only delay it.
    TraceContents& contents = *new TraceContents(Collect(/*exit=*/true, exit_code));
    ProbeExitCleanup(&contents);
    std::string path;
    if (!trace_file_.empty()) {
      path = ExpandPid(trace_file_, getpid());
      const int error =
          WriteFileReplacing(path, [&contents](const ChunkSink& sink) { return WriteTrace(contents, sink); });
      if (error != 0) {
        Log("cannot write the trace file %s: %s", path.c_str(), strerror(error));
        path.clear();
      }
    }
    if (leak_report_top_ > 0 && log_line_ != nullptr && llround(contents.totals.live_blocks) > 0) {
      // The leak report needs the live sites alone: a document of those is small even when the whole trace
      // is not (PyTorch's import: 10,000 live sites of 600,000).
      contents.sites.erase(std::remove_if(contents.sites.begin(), contents.sites.end(),
                                          [](const SiteCounters& site) { return llround(site.live_blocks) == 0; }),
                           contents.sites.end());
      // Every block left is one the C runtime's cleanup frees: the text would be empty (no symbolizer to load).
      const bool runtime_only =
          contents.exit_cleanup_probed &&
          std::all_of(contents.sites.begin(), contents.sites.end(), [](const SiteCounters& site) {
            return site.freed_at_exit_blocks >= site.live_blocks && site.freed_at_exit_bytes >= site.live_bytes;
          });
      if (runtime_only) return;
      LeakTextCall call;
      call.load = LoadLeakText;
      call.trace = new std::string(TraceText(contents));  // never destroyed, like contents
      call.trace_path = path;
      call.suppressions = suppressions_;
      call.top_stacks = leak_report_top_;
      call.log_line = log_line_;
      call.write_text = write_text_;
      std::string reason;
      const LeakTextOutcome outcome = PrintLeakTextFromChild(call, kLeakTextStallMs, &reason);
      if (outcome == LeakTextOutcome::kNotTried && PrintLeakTextHere(call, &reason)) return;
      if (outcome != LeakTextOutcome::kPrinted) {
        Log("%s", LeakTotalsLine(llround(contents.totals.live_bytes), llround(contents.totals.live_blocks),
                                 contents.sites.size(), sample_mode_, path, reason)
                      .c_str());
      }
    }
  }

  // The leak text made in this process, when no child could make it. False with *reason set if it cannot be.
  static bool PrintLeakTextHere(const LeakTextCall& call, std::string* reason) {
    // The module's libraries (absl's strings and status) bring std::ios_base::Init objects, whose destructors
    // run after this exit handler and flush std::cout and std::cerr, taking stdout's and stderr's locks: a C
    // program with another thread holding one (a printf blocked on a full pipe, flockfile) would hang there.
    for (FILE* stream : {stdout, stderr}) {
      if (ftrylockfile(stream) != 0) {
        *reason = std::string("another thread holds the lock of standard ") +
                  (stream == stdout ? "output" : "error") + " (the report's libraries would wait for it at exit)";
        return false;
      }
      funlockfile(stream);
    }
    const MemtideLeakTextFunction leak_text = call.load(reason);
    if (leak_text == nullptr) return false;
    auto print = [&call, leak_text] {
      leak_text(call.trace->data(), call.trace->size(), call.trace_path.c_str(), call.suppressions.c_str(),
                call.top_stacks, call.log_line, call.write_text);
    };
    CallOnLargeStack(print);  // the exiting thread may have a small stack (large_stack.h)
    return true;
  }

  // Which live blocks the C runtime's exit cleanup frees (exit_cleanup_probe.h): those are not leaks. On
  // failure the reader tells them apart by their stacks (leak_suppressions.h), and the log says why once.
  void ProbeExitCleanup(TraceContents* contents) {
    if (run_traced_ == nullptr || llround(contents->totals.live_blocks) == 0) return;
    ExitCleanupProbeHooks hooks;
    hooks.before_clone = [this] { LockTablesForFork(); };
    hooks.after_clone_parent = [this] { UnlockTablesAfterFork(); };
    hooks.after_clone_child = [this] { ResetTableLocksAfterFork(); };
    hooks.run_traced = run_traced_;
    hooks.sites_now = [this] { return CollectSites(); };
    std::string why;
    if (memtide::internal::ProbeExitCleanup(hooks, kExitCleanupTimeoutMs, &contents->sites, &why)) {
      contents->exit_cleanup_probed = true;
    } else {
      Log("could not run the C runtime's exit cleanup in a child to see which blocks it frees (%s); they are told "
          "apart by their stacks instead",
          why.c_str());
    }
  }

  // libmemtide_leak_text.so from this module's folder (leak_text_module.h), or null with *reason set.
  static MemtideLeakTextFunction LoadLeakText(std::string* reason) {
    const std::string path = OwnFolder() + MEMTIDE_LEAK_TEXT_MODULE;
    void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (module == nullptr) {
      const char* error = dlerror();
      *reason = "cannot load " + (error != nullptr ? std::string(error) : path);
      return nullptr;
    }
    auto* entry = reinterpret_cast<MemtideLeakTextFunction>(dlsym(module, MEMTIDE_LEAK_TEXT_ENTRY));
    if (entry == nullptr) *reason = path + " has no " MEMTIDE_LEAK_TEXT_ENTRY;
    return entry;
  }

  // fork(): the writer first (it takes the others one at a time), then every lock in the order the hot paths
  // nest them: depot shard -> arena -> id array; live shard -> huge-size shard -> site (Flush).
  void BeforeFork() {
    writer_lock_.Lock();
    LockTablesForFork();
  }

  void AfterForkParent() {
    UnlockTablesAfterFork();
    writer_lock_.Unlock();
  }

  // The child keeps every table: the parent's live blocks are live in the child too. It is a new process
  // for the trace: its own exit writes its own file (the pid in the name differs).
  void AfterForkChild() {
    ResetTableLocksAfterFork();
    writer_lock_.ResetAfterFork();
    exited_ = false;
    snapshot_counter_.store(0, std::memory_order_relaxed);
  }

 private:
  // Every lock but the writer's (which the exit-cleanup probe already holds), in the order the hot paths nest
  // them.
  void LockTablesForFork() {
    queue_.LockForFork();
    modules_.LockForFork();
    depot_.LockAll();
    full_live_.LockAll();
    sample_live_.LockAll();
    huge_sizes_.LockAll();
    sites_.LockAll();
  }

  void UnlockTablesAfterFork() {
    sites_.UnlockAll();
    huge_sizes_.UnlockAll();
    sample_live_.UnlockAll();
    full_live_.UnlockAll();
    depot_.UnlockAll();
    modules_.UnlockForFork();
    queue_.UnlockAfterFork();
  }

  void ResetTableLocksAfterFork() {
    sample_live_.ResetLocksAfterFork();
    huge_sizes_.ResetLocksAfterFork();
    full_live_.ResetLocksAfterFork();
    sites_.ResetLocksAfterFork();
    depot_.ResetLocksAfterFork();
    modules_.ResetAfterFork();
    queue_.ResetAfterFork();  // applies what was queued: the tables' locks must be usable again first
  }

  // Every site's counters, pending site changes merged first (each shard's lock, then its sites' locks).
  std::vector<SiteCounters> CollectSites() {
    queue_.Drain(SIZE_MAX);
    full_live_.ForEachExtra([this](PendingSiteChanges& pending) { sites_.Flush(pending); });
    sample_live_.ForEachExtra([this](PendingSiteChanges& pending) { sites_.Flush(pending); });
    return sites_.Collect(depot_.MaxId());
  }

  // Capture (no lock held) and intern. 0 when the depot is out of memory. The thread's walk memo recognizes
  // the stack of its previous traced allocation without walking or hashing it (allocations in a loop).
  __attribute__((always_inline)) uint32_t CaptureStack(MemtideTracerThread* thread) {
    if (dlclose_calls_ != nullptr) {
      const uint64_t closes = __atomic_load_n(dlclose_calls_, __ATOMIC_RELAXED);
      if (__builtin_expect(closes != dlclose_seen_.load(std::memory_order_relaxed), false)) NoticeDlclose(closes);
    }
    WalkMemo* memo = static_cast<WalkMemo*>(thread->walk_memo);
    // Not after the thread's exit: nothing would free it.
    if (memo == nullptr && capture_.fast_unwind() && thread->flush_always == 0) {
      memo = new (std::nothrow) WalkMemo;  // under the preload's guard: the next allocator's, untraced
      thread->walk_memo = memo;
    }
    uintptr_t frames[kMaxStackDepth];
    uint32_t remembered = 0;
    const int depth = capture_.Capture(frames, memo, &remembered);
    if (depth == StackCapture::kRemembered) return remembered;
    const uint64_t hash = StackDepot::Hash(frames, static_cast<uint32_t>(depth));
    const uint32_t found = depot_.Find(frames, static_cast<uint32_t>(depth), hash);
    if (__builtin_expect(found != 0, 1)) {
      if (memo != nullptr) memo->result = found;
      return found;
    }
    const uint32_t interned = depot_.Intern(frames, static_cast<uint32_t>(depth), hash);
    if (memo != nullptr) memo->result = interned;
    // Interning resolved the stack's modules, re-reading the loaded set if the loader's counters moved (an
    // unload that no dlclose call made: libc's own, for instance).
    ForgetUnwindRulesIfUnloaded();
    return interned;
  }

  // The program called dlclose: before this walk, re-read the loaded set, so that code which is gone loses its
  // unwind rules (and the memos made with them) and the depot its stacks' module names (stack_depot.h).
  // Enters the loader: no lock of ours is held here.
  __attribute__((noinline, cold)) void NoticeDlclose(uint64_t closes) {
    dlclose_seen_.store(closes, std::memory_order_relaxed);
    modules_.RefreshIfChanged();
    ForgetUnwindRulesIfUnloaded();
  }

  void ForgetUnwindRulesIfUnloaded() {
    const uint64_t unloads = modules_.unloads();
    if (unloads != unloads_seen_.load(std::memory_order_relaxed)) {
      unloads_seen_.store(unloads, std::memory_order_relaxed);
      capture_.ForgetUnwindRules();
    }
  }

  // A thread past its exit flush (or with no counter slot) has nobody to flush its traced bytes later.
  void FlushIfNothingElseWill(MemtideTracerThread* thread) {
    if (thread->flush_always != 0) sites_.FlushTotal(&thread->unflushed_bytes);
  }

  // The stack here; the table and site changes queued for the bookkeeping thread, or made here.
  __attribute__((always_inline)) int TrackFull(uintptr_t key, size_t requested, MemtideTracerThread* thread) {
    const bool may_queue = queue_.MayQueue();
    if (!may_queue) full_live_.Prefetch(key);  // the walk below hides most of a cache miss on the table
    const uint32_t stack = CaptureStack(thread);
    if (stack == 0 || !sites_.Prepare(stack)) {
      Stop("the stack depot is full or out of memory");
      return 0;
    }
    if (may_queue && queue_.Push(thread, BookkeepingRecord{key, requested, stack, 0})) return 1;
    const int tracked = ApplyFullAllocation(key, requested, stack, &thread->unflushed_bytes);
    FlushIfNothingElseWill(thread);
    return tracked;
  }

  // The insert and its site changes under one live-table shard lock; then the total (in `unflushed`, the
  // calling thread's count or the bookkeeping's). The site must be Prepare'd.
  int ApplyFullAllocation(uintptr_t key, size_t requested, uint32_t stack, int64_t* unflushed) {
    const uint32_t size = requested >= kHugeSize ? kHugeSize : static_cast<uint32_t>(requested);
    // A huge block's true size goes in first, so that it is there as soon as the block is in full_live_. If
    // the address was still in huge_sizes_ (a free never seen), that old size is the replaced block's.
    bool old_size_known = false;
    uint64_t old_huge_size = 0;
    if (size == kHugeSize) {
      switch (huge_sizes_.Insert(key, requested, &old_huge_size)) {
        case LiveAllocations<uint64_t>::InsertResult::kNoMemory:
          Stop("the live-allocation table could not grow");
          return 0;
        case LiveAllocations<uint64_t>::InsertResult::kReplaced:
          old_size_known = true;
          break;
        case LiveAllocations<uint64_t>::InsertResult::kInserted:
          break;
      }
    }
    const uint64_t version = sites_.PeakVersion();
    int64_t retired = 0;
    FullLiveValue replaced;
    const auto result = full_live_.Insert(
        key, FullLiveValue{stack, size}, &replaced, [&](PendingSiteChanges& pending, const FullLiveValue* old) {
          if (old != nullptr) {
            // The block's free never reached us (freed by a path the preload does not see): retire it now.
            const uint64_t old_size = old->size == kHugeSize && old_size_known ? old_huge_size : FullSize(key, *old);
            sites_.Record(pending, old->stack, version, -static_cast<double>(old_size), -1.0, false, 0);
            retired = static_cast<int64_t>(old_size);
          }
          sites_.Record(pending, stack, version, static_cast<double>(requested), 1.0, true, requested);
        });
    if (result == LiveAllocations<FullLiveValue, PendingSiteChanges>::InsertResult::kNoMemory) {
      uint64_t unused;
      if (size == kHugeSize) huge_sizes_.Remove(key, &unused);
      Stop("the live-allocation table could not grow");
      return 0;
    }
    if (retired != 0) sites_.LowerTotal(unflushed, retired);
    sites_.RaiseTotal(unflushed, static_cast<int64_t>(requested));
    return 1;
  }

  // The removal and its site change under one live-table shard lock; then the total. 1 if it was there.
  int ApplyFullFree(uintptr_t key, int64_t* unflushed) {
    int64_t total_delta = 0;
    FullLiveValue value;
    const bool found = full_live_.Remove(key, &value, [&](PendingSiteChanges& pending, const FullLiveValue& v) {
      const uint64_t size = FullSize(key, v);
      sites_.Record(pending, v.stack, sites_.PeakVersion(), -static_cast<double>(size), -1.0, false, 0);
      total_delta = static_cast<int64_t>(size);
    });
    if (!found) return 0;
    sites_.LowerTotal(unflushed, total_delta);
    return 1;
  }

  // The bookkeeping queue's applier (bookkeeping_queue.h), under its consume lock: in the order the owner made
  // the calls, with a count for the total of its own, flushed after each batch so that readers see an exact
  // total. One thread's changes in order: the peak and the figures at the peak stay exact.
  static void ApplyQueuedRecords(void* context, const BookkeepingRecord* records, size_t count) {
    Tracer* tracer = static_cast<Tracer*>(context);
    int64_t unflushed = 0;
    for (size_t i = 0; i < count; ++i) {
      const BookkeepingRecord& record = records[i];
      if (record.stack != 0) {
        tracer->ApplyFullAllocation(record.key, record.requested, record.stack, &unflushed);
      } else {
        tracer->ApplyFullFree(record.key, &unflushed);
      }
    }
    tracer->sites_.FlushTotal(&unflushed);
  }

  // The requested size of a full-mode entry just removed from (or replaced in) full_live_. Under that shard's
  // lock: a huge block's size comes from huge_sizes_, whose shard lock nests inside (fork takes them in order).
  uint64_t FullSize(uintptr_t key, const FullLiveValue& value) {
    if (value.size != kHugeSize) return value.size;
    uint64_t size = kHugeSize;
    huge_sizes_.Remove(key, &size);
    return size;
  }

  __attribute__((always_inline)) int TrackSample(uintptr_t key, size_t requested, size_t usable,
                                                 MemtideTracerThread* thread) {
    int64_t* unflushed = &thread->unflushed_bytes;
    const uint32_t stack = CaptureStack(thread);
    if (stack == 0 || !sites_.Prepare(stack)) {
      Stop("the stack depot is full or out of memory");
      return 0;
    }
    const double inverse_probability = 1.0 / SampleProbability(usable, mean_bytes_);
    const double bytes = static_cast<double>(requested) * inverse_probability;
    const uint64_t version = sites_.PeakVersion();
    int64_t retired = 0;
    SampleLiveValue replaced;
    const auto result =
        sample_live_.Insert(key, SampleLiveValue{stack, 0, inverse_probability, requested}, &replaced,
                            [&](PendingSiteChanges& pending, const SampleLiveValue* old) {
                              if (old != nullptr) retired = RetireSample(pending, *old, version);
                              sites_.Record(pending, stack, version, bytes, inverse_probability, true, requested);
                            });
    if (result == LiveAllocations<SampleLiveValue, PendingSiteChanges>::InsertResult::kNoMemory) {
      Stop("the live-allocation table could not grow");
      return 0;
    }
    if (retired != 0) sites_.LowerTotal(unflushed, retired);
    sites_.RaiseTotal(unflushed, std::llround(bytes));
    FlushIfNothingElseWill(thread);
    return 1;
  }

  // The same products as at allocation, so the site and total amounts cancel exactly. Returns the total's
  // share, for LowerTotal after the shard lock.
  int64_t RetireSample(PendingSiteChanges& pending, const SampleLiveValue& value, uint64_t version) {
    const double bytes = static_cast<double>(value.requested) * value.inverse_probability;
    sites_.Record(pending, value.stack, version, -bytes, -value.inverse_probability, false, 0);
    return std::llround(bytes);
  }

  // Stops tracing new blocks (frees are still followed) and says so once. The trace is marked incomplete.
  __attribute__((noinline, cold)) void Stop(const char* reason) {
    if (stopped_.exchange(true, std::memory_order_relaxed)) return;
    Log("tracing stopped: %s; the trace file will say it is incomplete", reason);
  }

  // What the trace file holds, read shard by shard while other threads may go on allocating.
  // A site's example sizes are those of its live blocks when it has any (at exit: the leaked ones), else the
  // first sizes it allocated: a leak report must show what leaked, not what the stack allocated first (a
  // realloc chain that leaks one 40-byte block had shown "sizes 8, 16, 24, 32"). Walks the live tables one
  // shard at a time; `sites` is sorted by site.
  void UseLiveSizes(std::vector<SiteCounters>* sites) {
    std::unordered_map<uintptr_t, uint64_t> huge;
    huge_sizes_.ForEach([&](uintptr_t key, uint64_t size) { huge[key] = size; });
    std::unordered_map<uint32_t, SiteCounters> live;
    auto note = [&](uint32_t stack, uint64_t size) {
      SiteCounters& sizes = live[stack];
      for (uint32_t i = 0; i < sizes.size_count; ++i) {
        if (sizes.sizes[i] == size) return;
      }
      if (sizes.size_count < kMaxSiteSizes) sizes.sizes[sizes.size_count++] = size;
    };
    full_live_.ForEach([&](uintptr_t key, const FullLiveValue& value) {
      auto found = value.size == kHugeSize ? huge.find(key) : huge.end();
      note(value.stack, found != huge.end() ? found->second : value.size);
    });
    sample_live_.ForEach([&](uintptr_t, const SampleLiveValue& value) { note(value.stack, value.requested); });
    for (SiteCounters& site : *sites) {
      auto found = live.find(site.site);
      if (found == live.end() || found->second.size_count == 0) continue;
      std::copy(found->second.sizes, found->second.sizes + found->second.size_count, site.sizes);
      site.size_count = found->second.size_count;
    }
  }

  TraceContents Collect(bool exit, int32_t exit_code) {
    TraceContents contents;
    contents.exit = exit;
    contents.pid = getpid();
    contents.command = ReadCommandLine();
    contents.time_s = static_cast<double>(NowNs() - start_ns_) / 1e9;
    contents.has_exit_code = exit && exit_code >= 0;
    contents.exit_code = exit_code;
    contents.sample_mode = sample_mode_;
    contents.sample_mean_bytes = static_cast<int64_t>(mean_bytes_);
    contents.complete = !stopped_.load(std::memory_order_relaxed);

    std::vector<SiteCounters> sites = CollectSites();
    TraceTotals& totals = contents.totals;
    for (const SiteCounters& site : sites) {
      totals.live_bytes += site.live_bytes;
      totals.live_blocks += site.live_blocks;
      totals.allocated_bytes += site.allocated_bytes;
      totals.allocations += site.allocations;
    }
    totals.frees = totals.allocations - totals.live_blocks;
    totals.peak_bytes = static_cast<double>(sites_.peak_total());
    sites.erase(std::remove_if(sites.begin(), sites.end(), SiteRoundsToZero), sites.end());
    std::sort(sites.begin(), sites.end(), [](const SiteCounters& a, const SiteCounters& b) { return a.site < b.site; });
    UseLiveSizes(&sites);

    // Modules after the sites: a site exists only once its stack's record was published, and every module
    // index a record holds was appended before that, so the stacks written for these sites index this copy.
    contents.modules = modules_.Modules();
    contents.stacks = [this](uint32_t id, std::vector<uintptr_t>* addresses, std::vector<int32_t>* modules) {
      const StackRecord* record = depot_.Get(id);
      if (record == nullptr) return false;
      addresses->resize(record->depth);
      modules->resize(record->depth);
      StackDepot::CopyFrames(*record, addresses->data(), modules->data());
      return true;
    };
    contents.sites = std::move(sites);
    return contents;
  }

  const bool sample_mode_;
  const double mean_bytes_;
  const int32_t leak_report_top_;
  const std::string trace_file_;
  const std::string suppressions_;  // for the leak text at exit (leak_text_module.h)
  const std::string segment_dir_;
  const uintptr_t skip_begin_;
  const uintptr_t skip_end_;
  const int32_t max_frames_;
  const bool fast_unwind_;
  void (*const log_line_)(const char*);
  void (*const write_text_)(const char*, size_t);  // for the multi-line leak text (leak_text_module.h)
  const uint64_t* const dlclose_calls_;            // the preload's count (null: not given)
  void (*const run_traced_)(void (*)(void));       // the preload's (null: no exit-cleanup probe)
  const bool bookkeeping_thread_;                  // full mode, and the preload runs a bookkeeping thread
  int64_t start_ns_ = 0;

  StackCapture capture_;
  ModuleMap modules_;
  StackDepot depot_;
  SiteStats sites_;
  // The live tables carry the pending site changes (site_stats.h). Lock order: a full_live_ shard, then a
  // huge_sizes_ shard or site locks; never the other way round.
  LiveAllocations<FullLiveValue, PendingSiteChanges> full_live_;
  LiveAllocations<uint64_t> huge_sizes_;  // true sizes of full-mode blocks of kHugeSize bytes or more
  LiveAllocations<SampleLiveValue, PendingSiteChanges> sample_live_;
  BookkeepingQueue queue_;  // lock order: before every table (its drains apply to them)

  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> unloads_seen_{0};  // modules_.unloads() when the cached unwind rules were last dropped
  std::atomic<uint64_t> dlclose_seen_{0};  // *dlclose_calls_ when the loaded set was last re-read for it
  SpinLock writer_lock_;  // one writer at a time; guards exited_
  bool exited_ = false;
  std::atomic<uint64_t> snapshot_counter_{0};
};

Tracer* g_tracer = nullptr;

int64_t OnAllocationEntry(void* pointer, size_t requested, size_t usable, MemtideTracerThread* thread,
                          int* tracked) noexcept {
  return g_tracer->OnAllocation(pointer, requested, usable, thread, tracked);
}

int OnFreeEntry(void* pointer, MemtideTracerThread* thread) noexcept { return g_tracer->OnFree(pointer, thread); }

void OnThreadExitEntry(MemtideTracerThread* thread) noexcept { g_tracer->OnThreadExit(thread); }

int64_t DrainBookkeepingEntry() noexcept { return g_tracer->DrainBookkeeping(); }

int WriteSnapshotEntry(const char* path_or_null, char* name, size_t name_size, char* message, size_t message_size,
                       MemtideTracerThread* thread) noexcept {
  try {
    return g_tracer->WriteSnapshot(path_or_null, name, name_size, message, message_size, thread);
  } catch (const std::bad_alloc&) {
    CopyText("out of memory while writing the snapshot", message, message_size);
    return ENOMEM;
  } catch (const std::exception& error) {
    CopyText(std::string("cannot write the snapshot: ") + error.what(), message, message_size);
    return EIO;
  } catch (...) {
    CopyText("cannot write the snapshot", message, message_size);
    return EIO;
  }
}

void AtExitOnThisStack(int32_t exit_code, MemtideTracerThread* thread) noexcept {
  try {
    g_tracer->AtExit(exit_code, thread);
  } catch (const std::exception& error) {
    g_tracer->Log("cannot write the trace at exit: %s", error.what());
  } catch (...) {
    g_tracer->Log("cannot write the trace at exit");
  }
}

// The exiting thread may be memtide's monitor thread, with a 64 KiB stack (large_stack.h).
void AtExitEntry(int32_t exit_code, MemtideTracerThread* thread) noexcept {
  auto at_exit = [exit_code, thread] { AtExitOnThisStack(exit_code, thread); };
  CallOnLargeStack(at_exit);
}

void BeforeForkEntry() noexcept { g_tracer->BeforeFork(); }
void AfterForkParentEntry() noexcept { g_tracer->AfterForkParent(); }
void AfterForkChildEntry() noexcept { g_tracer->AfterForkChild(); }

const MemtideTracerApi kApi = {
    /*abi_version=*/MEMTIDE_TRACER_ABI_VERSION,
    /*on_allocation=*/OnAllocationEntry,
    /*on_free=*/OnFreeEntry,
    /*on_thread_exit=*/OnThreadExitEntry,
    /*write_snapshot=*/WriteSnapshotEntry,
    /*at_exit=*/AtExitEntry,
    /*before_fork=*/BeforeForkEntry,
    /*after_fork_parent=*/AfterForkParentEntry,
    /*after_fork_child=*/AfterForkChildEntry,
    /*drain_bookkeeping=*/DrainBookkeepingEntry,
};

void LogStartFailure(const MemtideTracerConfig* config, const char* what) {
  if (config == nullptr || config->log_line == nullptr) return;
  char line[512];
  snprintf(line, sizeof(line), "tracing off: %s", what);
  config->log_line(line);
}

}  // namespace
}  // namespace memtide::internal

extern "C" __attribute__((visibility("default"))) const MemtideTracerApi* memtide_tracer_start(
    const MemtideTracerConfig* config) noexcept {
  using memtide::internal::g_tracer;
  using memtide::internal::LogStartFailure;
  using memtide::internal::Tracer;
  // The preload calls this once, from one thread; a second call gets the running tracer.
  if (g_tracer != nullptr) return &memtide::internal::kApi;
  if (config == nullptr) return nullptr;
  if (config->abi_version != MEMTIDE_TRACER_ABI_VERSION) {
    char what[128];
    snprintf(what, sizeof(what), "the tracer module speaks ABI %d, the preload %u", MEMTIDE_TRACER_ABI_VERSION,
             config->abi_version);
    LogStartFailure(config, what);
    return nullptr;
  }
  if (config->mode != kMemtideTraceSample && config->mode != kMemtideTraceFull) {
    LogStartFailure(config, "the tracer module was started with a mode that is neither sample nor full");
    return nullptr;
  }
  try {
    Tracer* tracer = new Tracer(*config);
    std::string error;
    if (!tracer->Start(&error)) {
      LogStartFailure(config, error.c_str());
      delete tracer;
      return nullptr;
    }
    g_tracer = tracer;
    return &memtide::internal::kApi;
  } catch (const std::exception& error) {
    LogStartFailure(config, error.what());
  } catch (...) {
    LogStartFailure(config, "the tracer module could not start");
  }
  return nullptr;
}
