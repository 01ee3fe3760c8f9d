#include "train/manifest.h"

#include <cmath>
#include <cstring>

#include "core/error.h"

namespace eurollm::train {
namespace {

// ---- writer ----

struct writer {
    std::string out;
    void varint(uint64_t v) {
        while (v >= 0x80) {
            out += static_cast<char>((v & 0x7f) | 0x80);
            v >>= 7;
        }
        out += static_cast<char>(v);
    }
    void tag(int field, int wire) { varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire)); }
    // proto3: default (zero / empty) values are not written.
    void u64(int field, uint64_t v) {
        if (!v) return;
        tag(field, 0);
        varint(v);
    }
    void i64(int field, int64_t v) { u64(field, static_cast<uint64_t>(v)); }
    void f32(int field, float v) {
        if (v == 0.0f && !std::signbit(v)) return;
        tag(field, 5);
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        for (int i = 0; i < 4; ++i) out += static_cast<char>(bits >> (8 * i));
    }
    void bytes(int field, const std::string &s, bool always = false) {
        if (s.empty() && !always) return;
        tag(field, 2);
        varint(s.size());
        out += s;
    }
};

// ---- reader ----

struct reader {
    const std::string &s;
    size_t pos = 0, end;
    reader(const std::string &str, size_t b, size_t e) : s(str), pos(b), end(e) {}
    [[noreturn]] static void bad() { fail(EUROLLM_ERR_BAD_MODEL, "checkpoint manifest: malformed Protobuf data"); }
    bool done() const { return pos >= end; }
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos >= end) bad();
            const uint8_t b = static_cast<uint8_t>(s[pos++]);
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        bad();
    }
    float f32() {
        if (end - pos < 4) bad();
        uint32_t bits = 0;
        for (int i = 0; i < 4; ++i) bits |= static_cast<uint32_t>(static_cast<uint8_t>(s[pos + i])) << (8 * i);
        pos += 4;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }
    // A length-delimited field: returns [begin, end) of its bytes.
    std::pair<size_t, size_t> span() {
        const uint64_t n = varint();
        if (n > end - pos) bad();
        const size_t b = pos;
        pos += n;
        return {b, pos};
    }
    std::string str() {
        const auto sp = span();
        return s.substr(sp.first, sp.second - sp.first);
    }
    void skip(int wire) {
        switch (wire) {
            case 0: varint(); break;
            case 1: if (end - pos < 8) bad(); pos += 8; break;
            case 2: span(); break;
            case 5: if (end - pos < 4) bad(); pos += 4; break;
            default: bad();
        }
    }
};

template <typename Fn>
void each_field(reader &r, Fn &&fn) {
    while (!r.done()) {
        const uint64_t key = r.varint();
        const int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
        if (!fn(field, wire)) r.skip(wire);
    }
}

}  // namespace

std::string manifest::encode() const {
    writer w;
    w.u64(1, format_version);
    w.i64(2, step);
    w.bytes(3, mode);
    {
        writer l;
        l.u64(1, lora_rank);
        l.f32(2, lora_alpha);
        l.f32(3, lora_dropout);
        l.u64(4, lora_targets);
        w.bytes(4, l.out);
    }
    {
        writer h;
        h.f32(1, lr);
        h.f32(2, beta1);
        h.f32(3, beta2);
        h.f32(4, eps);
        h.f32(5, weight_decay);
        h.f32(6, max_grad_norm);
        h.i64(7, micro_batch);
        h.u64(8, seed);
        h.bytes(9, precision);
        w.bytes(5, h.out);
    }
    {
        writer s;
        s.bytes(1, schedule_kind);
        s.i64(2, warmup_steps);
        s.i64(3, total_steps);
        s.f32(4, min_lr_ratio);
        w.bytes(6, s.out);
    }
    w.u64(7, rng_state);
    {
        writer d;
        d.u64(1, data_epoch);
        d.u64(2, data_offset);
        d.u64(3, data_seed);
        w.bytes(8, d.out);
    }
    for (const auto &f : files) {
        writer e;
        e.bytes(1, f.name);
        e.u64(2, f.size);
        e.bytes(3, f.sha256);
        w.bytes(9, e.out, true);
    }
    w.bytes(10, base_model);
    w.i64(11, n_trainable);
    w.bytes(12, created_by);
    w.i64(13, tokens_seen);
    return w.out;
}

manifest manifest::decode(const std::string &bytes) {
    manifest m;
    m.format_version = 0;
    reader r(bytes, 0, bytes.size());
    each_field(r, [&](int field, int wire) {
        auto need = [&](int want) {
            if (wire != want) reader::bad();
        };
        switch (field) {
            case 1: need(0); m.format_version = static_cast<uint32_t>(r.varint()); return true;
            case 2: need(0); m.step = static_cast<int64_t>(r.varint()); return true;
            case 3: need(2); m.mode = r.str(); return true;
            case 4: {
                need(2);
                const auto sp = r.span();
                reader s(bytes, sp.first, sp.second);
                each_field(s, [&](int f, int wt) {
                    if (f == 1 && wt == 0) { m.lora_rank = static_cast<uint32_t>(s.varint()); return true; }
                    if (f == 2 && wt == 5) { m.lora_alpha = s.f32(); return true; }
                    if (f == 3 && wt == 5) { m.lora_dropout = s.f32(); return true; }
                    if (f == 4 && wt == 0) { m.lora_targets = static_cast<uint32_t>(s.varint()); return true; }
                    return false;
                });
                return true;
            }
            case 5: {
                need(2);
                const auto sp = r.span();
                reader s(bytes, sp.first, sp.second);
                each_field(s, [&](int f, int wt) {
                    float *floats[6] = {&m.lr, &m.beta1, &m.beta2, &m.eps, &m.weight_decay, &m.max_grad_norm};
                    if (f >= 1 && f <= 6 && wt == 5) { *floats[f - 1] = s.f32(); return true; }
                    if (f == 7 && wt == 0) { m.micro_batch = static_cast<int64_t>(s.varint()); return true; }
                    if (f == 8 && wt == 0) { m.seed = s.varint(); return true; }
                    if (f == 9 && wt == 2) { m.precision = s.str(); return true; }
                    return false;
                });
                return true;
            }
            case 6: {
                need(2);
                const auto sp = r.span();
                reader s(bytes, sp.first, sp.second);
                each_field(s, [&](int f, int wt) {
                    if (f == 1 && wt == 2) { m.schedule_kind = s.str(); return true; }
                    if (f == 2 && wt == 0) { m.warmup_steps = static_cast<int64_t>(s.varint()); return true; }
                    if (f == 3 && wt == 0) { m.total_steps = static_cast<int64_t>(s.varint()); return true; }
                    if (f == 4 && wt == 5) { m.min_lr_ratio = s.f32(); return true; }
                    return false;
                });
                return true;
            }
            case 7: need(0); m.rng_state = r.varint(); return true;
            case 8: {
                need(2);
                const auto sp = r.span();
                reader s(bytes, sp.first, sp.second);
                each_field(s, [&](int f, int wt) {
                    if (wt != 0 || f < 1 || f > 3) return false;
                    (f == 1 ? m.data_epoch : f == 2 ? m.data_offset : m.data_seed) = s.varint();
                    return true;
                });
                return true;
            }
            case 9: {
                need(2);
                const auto sp = r.span();
                reader s(bytes, sp.first, sp.second);
                file_entry e;
                each_field(s, [&](int f, int wt) {
                    if (f == 1 && wt == 2) { e.name = s.str(); return true; }
                    if (f == 2 && wt == 0) { e.size = s.varint(); return true; }
                    if (f == 3 && wt == 2) { e.sha256 = s.str(); return true; }
                    return false;
                });
                m.files.push_back(e);
                return true;
            }
            case 10: need(2); m.base_model = r.str(); return true;
            case 11: need(0); m.n_trainable = static_cast<int64_t>(r.varint()); return true;
            case 12: need(2); m.created_by = r.str(); return true;
            case 13: need(0); m.tokens_seen = static_cast<int64_t>(r.varint()); return true;
            default: return false;
        }
    });
    return m;
}

}  // namespace eurollm::train
