// The fast x86-64 stack walk and its rule cache (see cfa_unwinder.h). Tracer module: Capture runs on the hot
// path of every traced allocation; a miss reads .eh_frame (no lock, no allocation, no system call).
//
// DWARF call frame information as GCC and Clang emit it for x86-64 (DWARF 5, section 6.4; the .eh_frame and
// .eh_frame_hdr layout of the Linux Standard Base): only what is needed to follow RSP, RBP and the return
// address. Everything else that could change them is refused (kUnsupported), never approximated.
#include "cfa_unwinder.h"

#include <dlfcn.h>
#include <string.h>

extern "C" void* __libc_stack_end;  // ld.so (GLIBC_2.1): the stack pointer _start was entered with

namespace memtide::internal {
namespace {

// Pointer encodings (DW_EH_PE_*).
constexpr uint8_t kEncodingOmit = 0xff;
constexpr uint8_t kFormatMask = 0x0f;
constexpr uint8_t kAbsolute = 0x00;
constexpr uint8_t kUleb128 = 0x01;
constexpr uint8_t kUdata2 = 0x02;
constexpr uint8_t kUdata4 = 0x03;
constexpr uint8_t kUdata8 = 0x04;
constexpr uint8_t kSleb128 = 0x09;
constexpr uint8_t kSdata2 = 0x0a;
constexpr uint8_t kSdata4 = 0x0b;
constexpr uint8_t kSdata8 = 0x0c;
constexpr uint8_t kApplicationMask = 0x70;
constexpr uint8_t kPcRelative = 0x10;
constexpr uint8_t kDataRelative = 0x30;
constexpr uint8_t kIndirect = 0x80;

// DWARF register numbers on x86-64.
constexpr uint64_t kRegisterBp = 6;
constexpr uint64_t kRegisterSp = 7;
constexpr uint64_t kRegisterReturnAddress = 16;

// Bounded little-endian reads; any read past `end` marks the reader failed and yields zeros.
class ByteReader {
 public:
  ByteReader(const uint8_t* begin, const uint8_t* end) : position_(begin), end_(end) {}

  bool ok() const { return ok_; }
  const uint8_t* position() const { return position_; }
  bool AtEnd() const { return position_ >= end_; }
  void Skip(uint64_t bytes) {
    if (bytes > static_cast<uint64_t>(end_ - position_)) {
      ok_ = false;
      position_ = end_;
      return;
    }
    position_ += bytes;
  }

  template <typename T>
  T Fixed() {
    T value{};
    if (static_cast<size_t>(end_ - position_) < sizeof(T)) {
      ok_ = false;
      position_ = end_;
      return value;
    }
    memcpy(&value, position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }

  uint64_t Uleb() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t byte = Fixed<uint8_t>();
      if (!ok_) return 0;
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    ok_ = false;
    return 0;
  }

  int64_t Sleb() {
    int64_t value = 0;
    int shift = 0;
    uint8_t byte = 0;
    do {
      byte = Fixed<uint8_t>();
      if (!ok_ || shift >= 64) {
        ok_ = false;
        return 0;
      }
      value |= static_cast<int64_t>(static_cast<uint64_t>(byte & 0x7f) << shift);
      shift += 7;
    } while ((byte & 0x80) != 0);
    if (shift < 64 && (byte & 0x40) != 0) value |= -(int64_t{1} << shift);
    return value;
  }

  // An encoded pointer. `data_base` is what datarel is relative to (.eh_frame_hdr's start); pcrel is relative
  // to the field itself. False for encodings the sections here never use (textrel, funcrel, aligned).
  bool Encoded(uint8_t encoding, uintptr_t data_base, uintptr_t* out) {
    const uintptr_t field = reinterpret_cast<uintptr_t>(position_);
    uint64_t value = 0;
    switch (encoding & kFormatMask) {
      case kAbsolute: value = Fixed<uint64_t>(); break;
      case kUleb128: value = Uleb(); break;
      case kUdata2: value = Fixed<uint16_t>(); break;
      case kUdata4: value = Fixed<uint32_t>(); break;
      case kUdata8: value = Fixed<uint64_t>(); break;
      case kSleb128: value = static_cast<uint64_t>(Sleb()); break;
      case kSdata2: value = static_cast<uint64_t>(static_cast<int64_t>(Fixed<int16_t>())); break;
      case kSdata4: value = static_cast<uint64_t>(static_cast<int64_t>(Fixed<int32_t>())); break;
      case kSdata8: value = static_cast<uint64_t>(Fixed<int64_t>()); break;
      default: return false;
    }
    switch (encoding & kApplicationMask) {
      case 0: break;
      case kPcRelative: value += field; break;
      case kDataRelative: value += data_base; break;
      default: return false;
    }
    if ((encoding & kIndirect) != 0) return false;  // a pointer to the pointer: not used for code ranges
    *out = static_cast<uintptr_t>(value);
    return ok_;
  }

 private:
  const uint8_t* position_;
  const uint8_t* end_;
  bool ok_ = true;
};

// How one register is recovered in the caller.
enum class RegisterRule : uint8_t { kSame, kUndefined, kOffset, kOther };

struct Row {
  uint64_t cfa_register = kRegisterSp;
  int64_t cfa_offset = 0;
  bool cfa_supported = true;  // false after DW_CFA_def_cfa_expression
  RegisterRule bp = RegisterRule::kSame;
  int64_t bp_offset = 0;
  RegisterRule return_address = RegisterRule::kSame;
  int64_t return_address_offset = 0;

  void Set(uint64_t reg, RegisterRule rule, int64_t offset) {
    if (reg == kRegisterBp) {
      bp = rule;
      bp_offset = offset;
    } else if (reg == kRegisterReturnAddress) {
      return_address = rule;
      return_address_offset = offset;
    } else if (reg == kRegisterSp && rule != RegisterRule::kSame) {
      cfa_supported = false;  // RSP recovered otherwise than as the CFA
    }
  }
  void Restore(uint64_t reg, const Row& initial) {
    if (reg == kRegisterBp) {
      bp = initial.bp;
      bp_offset = initial.bp_offset;
    } else if (reg == kRegisterReturnAddress) {
      return_address = initial.return_address;
      return_address_offset = initial.return_address_offset;
    }
  }
};

struct CommonInformation {
  uint64_t code_alignment = 1;
  int64_t data_alignment = 1;
  uint8_t pointer_encoding = kAbsolute;
  bool signal_frame = false;
  const uint8_t* instructions = nullptr;
  const uint8_t* end = nullptr;
  bool has_augmentation_data = false;
};

bool ParseCommonInformation(const uint8_t* cie, CommonInformation* out) {
  uint32_t length = 0;
  memcpy(&length, cie, sizeof(length));
  if (length == 0 || length == 0xffffffffu) return false;  // no 64-bit DWARF in .eh_frame here
  ByteReader reader(cie + 4, cie + 4 + length);
  if (reader.Fixed<uint32_t>() != 0) return false;  // a CIE's id is 0 in .eh_frame
  const uint8_t version = reader.Fixed<uint8_t>();
  if (version != 1 && version != 3) return false;
  const char* augmentation = reinterpret_cast<const char*>(reader.position());
  const size_t augmentation_length = strnlen(augmentation, static_cast<size_t>(cie + 4 + length - reader.position()));
  reader.Skip(augmentation_length + 1);
  if (augmentation_length > 0 && augmentation[0] != 'z') return false;  // "eh" and other pre-z forms
  out->code_alignment = reader.Uleb();
  out->data_alignment = reader.Sleb();
  const uint64_t return_register = version == 1 ? reader.Fixed<uint8_t>() : reader.Uleb();
  if (return_register != kRegisterReturnAddress) return false;
  if (augmentation_length > 0) {
    out->has_augmentation_data = true;
    const uint64_t data_length = reader.Uleb();
    const uint8_t* data_end = reader.position() + data_length;
    if (data_length > static_cast<uint64_t>(cie + 4 + length - reader.position())) return false;
    for (size_t i = 1; i < augmentation_length; ++i) {
      const char c = augmentation[i];
      if (c == 'R') {
        out->pointer_encoding = reader.Fixed<uint8_t>();
      } else if (c == 'P') {
        // Only skipped: the personality routine is usually reached through a pointer (indirect), never read.
        const uint8_t encoding = reader.Fixed<uint8_t>();
        uintptr_t personality = 0;
        if (!reader.Encoded(encoding & ~kIndirect, 0, &personality)) return false;
      } else if (c == 'L') {
        reader.Fixed<uint8_t>();
      } else if (c == 'S') {
        out->signal_frame = true;
      } else {
        break;  // unknown letters: the data length lets us skip the rest
      }
    }
    reader = ByteReader(data_end, cie + 4 + length);
  }
  if (!reader.ok()) return false;
  out->instructions = reader.position();
  out->end = cie + 4 + length;
  return true;
}

// Runs call frame instructions on `row` until the location passes `target` (the CIE's initial instructions:
// target = UINTPTR_MAX, location 0). False for an instruction the rules cannot follow or a malformed one.
bool Execute(const uint8_t* begin, const uint8_t* end, const CommonInformation& cie, const Row& initial,
             uintptr_t location, uintptr_t target, Row* row) {
  constexpr int kMaxRemembered = 16;
  Row remembered[kMaxRemembered];
  int remembered_count = 0;
  ByteReader reader(begin, end);
  auto advance = [&](uint64_t delta) {
    location += delta * cie.code_alignment;
    return location <= target;
  };
  while (!reader.AtEnd()) {
    const uint8_t opcode = reader.Fixed<uint8_t>();
    const uint8_t operand = opcode & 0x3f;
    switch (opcode >> 6) {
      case 1:  // DW_CFA_advance_loc
        if (!advance(operand)) return true;
        continue;
      case 2:  // DW_CFA_offset
        row->Set(operand, RegisterRule::kOffset, static_cast<int64_t>(reader.Uleb()) * cie.data_alignment);
        continue;
      case 3:  // DW_CFA_restore
        row->Restore(operand, initial);
        continue;
      default: break;
    }
    switch (opcode) {
      case 0x00: break;  // DW_CFA_nop
      case 0x01: {       // DW_CFA_set_loc
        uintptr_t address = 0;
        if (!reader.Encoded(cie.pointer_encoding, 0, &address)) return false;
        if (address > target) return true;
        location = address;
        break;
      }
      case 0x02:
        if (!advance(reader.Fixed<uint8_t>())) return true;
        break;
      case 0x03:
        if (!advance(reader.Fixed<uint16_t>())) return true;
        break;
      case 0x04:
        if (!advance(reader.Fixed<uint32_t>())) return true;
        break;
      case 0x05: {  // DW_CFA_offset_extended
        const uint64_t reg = reader.Uleb();
        row->Set(reg, RegisterRule::kOffset, static_cast<int64_t>(reader.Uleb()) * cie.data_alignment);
        break;
      }
      case 0x06: row->Restore(reader.Uleb(), initial); break;                  // DW_CFA_restore_extended
      case 0x07: row->Set(reader.Uleb(), RegisterRule::kUndefined, 0); break;  // DW_CFA_undefined
      case 0x08: row->Set(reader.Uleb(), RegisterRule::kSame, 0); break;       // DW_CFA_same_value
      case 0x09: {                                                             // DW_CFA_register
        const uint64_t reg = reader.Uleb();
        reader.Uleb();
        row->Set(reg, RegisterRule::kOther, 0);
        break;
      }
      case 0x0a:  // DW_CFA_remember_state
        if (remembered_count == kMaxRemembered) return false;
        remembered[remembered_count++] = *row;
        break;
      case 0x0b:  // DW_CFA_restore_state
        if (remembered_count == 0) return false;
        *row = remembered[--remembered_count];
        break;
      case 0x0c:  // DW_CFA_def_cfa
        row->cfa_register = reader.Uleb();
        row->cfa_offset = static_cast<int64_t>(reader.Uleb());
        row->cfa_supported = true;
        break;
      case 0x0d: row->cfa_register = reader.Uleb(); break;                           // DW_CFA_def_cfa_register
      case 0x0e: row->cfa_offset = static_cast<int64_t>(reader.Uleb()); break;       // DW_CFA_def_cfa_offset
      case 0x0f: reader.Skip(reader.Uleb()); row->cfa_supported = false; break;      // DW_CFA_def_cfa_expression
      case 0x10:                                                                     // DW_CFA_expression
      case 0x16: {                                                                   // DW_CFA_val_expression
        const uint64_t reg = reader.Uleb();
        reader.Skip(reader.Uleb());
        row->Set(reg, RegisterRule::kOther, 0);
        break;
      }
      case 0x11: {  // DW_CFA_offset_extended_sf
        const uint64_t reg = reader.Uleb();
        row->Set(reg, RegisterRule::kOffset, reader.Sleb() * cie.data_alignment);
        break;
      }
      case 0x12:  // DW_CFA_def_cfa_sf
        row->cfa_register = reader.Uleb();
        row->cfa_offset = reader.Sleb() * cie.data_alignment;
        row->cfa_supported = true;
        break;
      case 0x13: row->cfa_offset = reader.Sleb() * cie.data_alignment; break;  // DW_CFA_def_cfa_offset_sf
      case 0x14:                                                              // DW_CFA_val_offset
      case 0x15: {                                                            // DW_CFA_val_offset_sf
        const uint64_t reg = reader.Uleb();
        if (opcode == 0x14) {
          reader.Uleb();
        } else {
          reader.Sleb();
        }
        row->Set(reg, RegisterRule::kOther, 0);
        break;
      }
      case 0x2e: reader.Uleb(); break;  // DW_CFA_GNU_args_size: only matters to exception landing pads
      case 0x2f: {                      // DW_CFA_GNU_negative_offset_extended
        const uint64_t reg = reader.Uleb();
        row->Set(reg, RegisterRule::kOffset, -static_cast<int64_t>(reader.Uleb()) * cie.data_alignment);
        break;
      }
      default: return false;
    }
    if (!reader.ok()) return false;
  }
  return reader.ok();
}

CfaRule RuleFromRow(const Row& row) {
  CfaRule rule;
  if (row.return_address == RegisterRule::kUndefined) {
    rule.kind = CfaRule::kOutermost;
    return rule;
  }
  if (!row.cfa_supported || row.return_address != RegisterRule::kOffset || row.return_address_offset != -8) return rule;
  if (row.cfa_offset < 8 || row.cfa_offset > INT32_MAX) return rule;
  if (row.cfa_register == kRegisterSp) {
    rule.kind = CfaRule::kFromSp;
  } else if (row.cfa_register == kRegisterBp) {
    rule.kind = CfaRule::kFromBp;
  } else {
    return rule;
  }
  if (row.bp == RegisterRule::kOffset) {
    if (row.bp_offset >= 0 || row.bp_offset < INT32_MIN) return CfaRule{};
    rule.saved_bp_offset = static_cast<int32_t>(row.bp_offset);
  } else if (row.bp != RegisterRule::kSame) {
    return CfaRule{};
  }
  rule.cfa_offset = static_cast<int32_t>(row.cfa_offset);
  return rule;
}

// One past the highest address of the stack `sp` is on, or 0 when that is not the calling thread's own stack.
// Another thread's descriptor sits at the top of its stack block (glibc's allocate_stack, user-supplied stacks
// included), so its thread pointer bounds the stack from above; the main thread's descriptor is elsewhere and
// its stack ends on __libc_stack_end's page (where _start found argc).
uintptr_t StackTop(uintptr_t sp) {
#if defined(__x86_64__)
  constexpr uintptr_t kMaxStack = uintptr_t{1} << 30;
  uintptr_t thread_pointer;
  asm("mov %%fs:0, %0" : "=r"(thread_pointer));
  if (sp < thread_pointer && thread_pointer - sp < kMaxStack) return thread_pointer;
  const uintptr_t main_top = (reinterpret_cast<uintptr_t>(__libc_stack_end) | 4095) + 1;
  if (sp < main_top && main_top - sp < kMaxStack) return main_top;
#else
  (void)sp;
#endif
  return 0;
}

}  // namespace

CfaRule RuleFromEhFrameHeader(const uint8_t* eh_frame_hdr, uintptr_t pc) {
  if (eh_frame_hdr == nullptr) return CfaRule{};
  const uintptr_t header = reinterpret_cast<uintptr_t>(eh_frame_hdr);
  // The header's own fields are a few bytes; the table's size is known once fde_count is read.
  ByteReader reader(eh_frame_hdr, eh_frame_hdr + 64);
  if (reader.Fixed<uint8_t>() != 1) return CfaRule{};
  const uint8_t frame_pointer_encoding = reader.Fixed<uint8_t>();
  const uint8_t count_encoding = reader.Fixed<uint8_t>();
  const uint8_t table_encoding = reader.Fixed<uint8_t>();
  uintptr_t eh_frame = 0;
  uintptr_t count = 0;
  if (frame_pointer_encoding == kEncodingOmit || count_encoding == kEncodingOmit) return CfaRule{};
  if (!reader.Encoded(frame_pointer_encoding, header, &eh_frame) || !reader.Encoded(count_encoding, header, &count)) {
    return CfaRule{};
  }
  if (table_encoding != (kDataRelative | kSdata4) || count == 0 || count > (uintptr_t{1} << 28)) return CfaRule{};
  struct TableEntry {
    int32_t initial_location;
    int32_t fde;
  };
  const auto* table = reinterpret_cast<const TableEntry*>(reader.position());
  // The last entry whose initial location is at or below pc.
  size_t low = 0;
  size_t high = count;
  while (high - low > 1) {
    const size_t middle = low + (high - low) / 2;
    if (header + static_cast<intptr_t>(table[middle].initial_location) <= pc) {
      low = middle;
    } else {
      high = middle;
    }
  }
  if (header + static_cast<intptr_t>(table[low].initial_location) > pc) return CfaRule{};
  const uint8_t* fde = eh_frame_hdr + table[low].fde;

  uint32_t length = 0;
  memcpy(&length, fde, sizeof(length));
  if (length == 0 || length == 0xffffffffu) return CfaRule{};
  const uint8_t* fde_end = fde + 4 + length;
  ByteReader fde_reader(fde + 4, fde_end);
  const uint32_t cie_pointer = fde_reader.Fixed<uint32_t>();
  if (cie_pointer == 0) return CfaRule{};  // that would be a CIE
  CommonInformation cie;
  if (!ParseCommonInformation(fde + 4 - cie_pointer, &cie) || cie.signal_frame) return CfaRule{};
  uintptr_t pc_begin = 0;
  uintptr_t pc_range = 0;
  if (!fde_reader.Encoded(cie.pointer_encoding, header, &pc_begin) ||
      !fde_reader.Encoded(cie.pointer_encoding & kFormatMask, 0, &pc_range)) {
    return CfaRule{};
  }
  if (pc < pc_begin || pc - pc_begin >= pc_range) return CfaRule{};  // in a gap between FDEs
  if (cie.has_augmentation_data) fde_reader.Skip(fde_reader.Uleb());
  if (!fde_reader.ok()) return CfaRule{};

  Row initial;
  if (!Execute(cie.instructions, cie.end, cie, initial, 0, UINTPTR_MAX, &initial)) return CfaRule{};
  Row row = initial;
  if (!Execute(fde_reader.position(), fde_end, cie, initial, pc_begin, pc, &row)) return CfaRule{};
  return RuleFromRow(row);
}

CfaRule RuleForAddress(uintptr_t pc) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
  dl_find_object found;
  if (_dl_find_object(reinterpret_cast<void*>(pc), &found) != 0) return CfaRule{};
  return RuleFromEhFrameHeader(static_cast<const uint8_t*>(found.dlfo_eh_frame), pc);
#else
  (void)pc;
  return CfaRule{};
#endif
}

uint64_t CfaUnwinder::Pack(const CfaRule& rule) {
  return static_cast<uint64_t>(rule.kind) | static_cast<uint64_t>(static_cast<uint32_t>(rule.cfa_offset)) << 8 |
         static_cast<uint64_t>(static_cast<uint16_t>(static_cast<int16_t>(rule.saved_bp_offset))) << 40 |
         uint64_t{1} << 63;  // never 0, so a stored rule is told from an empty one
}

__attribute__((noinline)) uint64_t CfaUnwinder::Miss(uintptr_t pc) {
  CfaRule rule = RuleForAddress(pc);
  rules_read_.fetch_add(1, std::memory_order_relaxed);
  if (rule.saved_bp_offset < INT16_MIN) rule = CfaRule{};  // too wide for the packed form: libunwind's frame
  const uint64_t packed = Pack(rule);
  size_t slot = Slot(pc);
  for (int probe = 0; probe < kProbes; ++probe, slot = (slot + 1) & kSlotMask) {
    Entry& entry = table_[slot];
    uintptr_t expected = 0;
    if (entry.pc.compare_exchange_strong(expected, kBusy, std::memory_order_relaxed)) {
      entry.rule.store(packed, std::memory_order_relaxed);
      entry.pc.store(pc, std::memory_order_release);
      return packed;
    }
    if (expected == pc) return packed;  // another thread cached it meanwhile
  }
  return packed;  // the probe run is full: uncached (Capture still works, only slower for this address)
}

void CfaUnwinder::Invalidate() {
  rule_epoch_.fetch_add(1, std::memory_order_relaxed);
  for (Entry& entry : table_) {
    if (entry.pc.load(std::memory_order_relaxed) != 0) entry.pc.store(0, std::memory_order_release);
  }
}

bool CfaUnwinder::Recall(const WalkMemo& memo, uintptr_t sp, uintptr_t bp) const {
  if (memo.result == 0 || memo.reads < 0 || memo.sp != sp || (memo.uses_start_bp && memo.bp != bp)) return false;
  if (memo.rule_epoch != rule_epoch_.load(std::memory_order_relaxed)) return false;
  // The same stack as when the memo was made: its addresses all lie between sp and the top (checked then).
  if (StackTop(sp) != memo.stack_top) return false;
  for (int i = 0; i < memo.reads; ++i) {
    if (*reinterpret_cast<const uintptr_t*>(memo.address[i]) != memo.value[i]) return false;
  }
  return true;
}

int CfaUnwinder::Walk(uintptr_t* frames, int max, uintptr_t pc, uintptr_t sp, uintptr_t bp, WalkMemo* memo) {
  const uintptr_t stack_top = StackTop(sp);
  if (memo != nullptr) {
    memo->reads = -1;
    memo->result = 0;
  }
  if (stack_top == 0) return -1;
  const uintptr_t start_sp = sp;
  const uintptr_t start_bp = bp;
  const uint64_t epoch = rule_epoch_.load(std::memory_order_relaxed);
  int reads = 0;
  // Saved RBPs matter only when a later frame's CFA is computed from them: code without frame pointers keeps
  // anything in RBP (a loop counter), and recording every saved copy would make the memo miss on each call.
  // So the last saved RBP read is recorded only once a frame uses it.
  bool bp_read = false;  // bp now comes from the stack, not from the start registers
  bool bp_pending = false;
  uintptr_t bp_slot = 0;
  bool uses_start_bp = false;
  auto record = [&](uintptr_t address, uintptr_t value) {
    if (reads < WalkMemo::kMaxReads) {
      memo->address[reads] = address;
      memo->value[reads] = value;
    }
    ++reads;
  };
  int depth = 0;
  bool first = true;
  while (depth < max) {
    // A return address points after the call: the call itself (pc - 1) is what the caller's row describes.
    const uint64_t rule = Lookup(first ? pc : pc - 1);
    first = false;
    const auto kind = static_cast<CfaRule::Kind>(rule & 0xff);
    const auto cfa_offset = static_cast<uintptr_t>(static_cast<intptr_t>(static_cast<int32_t>(rule >> 8)));
    const auto saved_bp_offset = static_cast<intptr_t>(static_cast<int16_t>(rule >> 40));
    uintptr_t cfa;
    if (kind == CfaRule::kFromSp) {
      cfa = sp + cfa_offset;
    } else if (kind == CfaRule::kFromBp) {
      cfa = bp + cfa_offset;
      uses_start_bp = uses_start_bp || !bp_read;
      if (bp_pending && memo != nullptr) record(bp_slot, bp);
      bp_pending = false;
    } else if (kind == CfaRule::kOutermost) {
      break;
    } else {
      return -1;
    }
    // Within [sp + 8, stack_top]: the return address slot below the CFA lies on this stack, above sp.
    if (cfa < sp + 8 || cfa > stack_top || (cfa & 7) != 0) return -1;
    const uintptr_t return_address = reinterpret_cast<const uintptr_t*>(cfa)[-1];
    if (memo != nullptr) record(cfa - 8, return_address);
    if (saved_bp_offset != 0) {
      const uintptr_t slot = cfa + static_cast<uintptr_t>(saved_bp_offset);
      if (slot < sp || slot + sizeof(uintptr_t) > stack_top) return -1;
      bp = *reinterpret_cast<const uintptr_t*>(slot);
      bp_read = true;
      bp_pending = true;
      bp_slot = slot;
    }
    sp = cfa;
    pc = return_address;
    if (pc == 0) break;  // threads and _start end their chain with a zero return address
    frames[depth++] = pc;
  }
  if (memo != nullptr && reads <= WalkMemo::kMaxReads) {
    memo->reads = reads;
    memo->rule_epoch = epoch;
    memo->sp = start_sp;
    memo->bp = start_bp;
    memo->uses_start_bp = uses_start_bp;
    memo->stack_top = stack_top;
  }
  return depth;
}

}  // namespace memtide::internal
