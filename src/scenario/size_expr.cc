#include "scenario/size_expr.h"

#include <fmt/format.h>

#include <optional>

namespace hmmsim::scenario {
namespace {

std::optional<int64_t> suffix_unit(char c) {
  switch (c) {
    case 'K': return int64_t{1} << 10;
    case 'M': return int64_t{1} << 20;
    case 'G': return int64_t{1} << 30;
    case 'P': return int64_t{4096};
    case 'H': return int64_t{2} << 20;
    default: return std::nullopt;
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string describe(std::string_view text, size_t pos) {
  if (pos >= text.size()) return "the end";
  const char c = text[pos];
  if (c >= 0x21 && c < 0x7f) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02x}", static_cast<unsigned char>(c));
}

// Recursive descent over one expression:
//   expr   := term (('+' | '-') term)*
//   term   := factor (('*' | '/') factor)*
//   factor := NUMBER [SUFFIX] | SUFFIX | '(' expr ')'
class SizeParser {
 public:
  explicit SizeParser(std::string_view text) : text_(text) {}

  std::variant<int64_t, SizeError> run() {
    std::optional<int64_t> v = expr();
    if (v && pos_ < text_.size()) {
      fail(pos_, fmt::format("expected an operator, got {}", describe(text_, pos_)));
    }
    if (error_) return *error_;
    return *v;
  }

 private:
  std::optional<int64_t> expr();
  std::optional<int64_t> term();
  std::optional<int64_t> factor();
  std::optional<int64_t> number();
  std::optional<int64_t> digits(int base, size_t start);
  std::optional<int64_t> apply(char op, size_t at, int64_t a, int64_t b);

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool more() const { return pos_ < text_.size(); }

  std::nullopt_t fail(size_t at, std::string message) {
    if (!error_) error_ = SizeError{at, std::move(message), false};
    return std::nullopt;
  }

  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::optional<SizeError> error_;
};

std::optional<int64_t> SizeParser::expr() {
  std::optional<int64_t> acc = term();
  while (acc && more() && (peek() == '+' || peek() == '-')) {
    const size_t at = pos_;
    const char op = text_[pos_++];
    std::optional<int64_t> rhs = term();
    if (!rhs) return std::nullopt;
    acc = apply(op, at, *acc, *rhs);
  }
  return acc;
}

std::optional<int64_t> SizeParser::term() {
  std::optional<int64_t> acc = factor();
  while (acc && more() && (peek() == '*' || peek() == '/')) {
    const size_t at = pos_;
    const char op = text_[pos_++];
    std::optional<int64_t> rhs = factor();
    if (!rhs) return std::nullopt;
    acc = apply(op, at, *acc, *rhs);
  }
  return acc;
}

std::optional<int64_t> SizeParser::factor() {
  if (peek() != '(') return number();
  const size_t open = pos_++;
  if (++depth_ > kMaxSizeDepth) {
    return fail(open, fmt::format("parentheses nested deeper than {}", kMaxSizeDepth));
  }
  std::optional<int64_t> v = expr();
  if (!v) return std::nullopt;
  if (peek() != ')') {
    return fail(pos_, fmt::format("expected ')' to close the '(' at byte {}, got {}", open + 1,
                                  describe(text_, pos_)));
  }
  ++pos_;
  --depth_;
  return v;
}

std::optional<int64_t> SizeParser::number() {
  const size_t start = pos_;
  if (std::optional<int64_t> unit = suffix_unit(peek())) {
    ++pos_;
    return unit;
  }
  if (!more() || !is_digit(peek())) {
    std::string what = start == 0 ? "" : fmt::format(" after '{}'", text_[start - 1]);
    fail(start, fmt::format("expected a number{}, got {}", what, describe(text_, start)));
    if (start == 0) error_->not_a_size = true;
    return std::nullopt;
  }
  const bool hex = peek() == '0' && pos_ + 1 < text_.size() &&
                   (text_[pos_ + 1] == 'x' || text_[pos_ + 1] == 'X');
  if (hex) pos_ += 2;
  std::optional<int64_t> v = digits(hex ? 16 : 10, start);
  if (!v) return std::nullopt;
  std::optional<int64_t> unit = suffix_unit(peek());
  if (!unit) return v;
  ++pos_;
  int64_t scaled = 0;
  if (__builtin_mul_overflow(*v, *unit, &scaled)) {
    return fail(start, fmt::format("'{}' overflows 64 bits", text_.substr(start, pos_ - start)));
  }
  return scaled;
}

// The digits of a number that starts at `start` (before any 0x).
std::optional<int64_t> SizeParser::digits(int base, size_t start) {
  const size_t first = pos_;
  int64_t v = 0;
  for (; more(); ++pos_) {
    const int d = base == 16 ? hex_digit(peek()) : (is_digit(peek()) ? peek() - '0' : -1);
    if (d < 0) break;
    if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v)) {
      return fail(start, "number overflows 64 bits");
    }
  }
  if (pos_ == first) return fail(start, "expected hex digits after '0x'");
  return v;
}

std::optional<int64_t> SizeParser::apply(char op, size_t at, int64_t a, int64_t b) {
  int64_t r = 0;
  bool overflow = false;
  switch (op) {
    case '+': overflow = __builtin_add_overflow(a, b, &r); break;
    case '-': overflow = __builtin_sub_overflow(a, b, &r); break;
    case '*': overflow = __builtin_mul_overflow(a, b, &r); break;
    default:
      if (b == 0) return fail(at, "division by zero");
      overflow = (a == INT64_MIN && b == -1);
      if (!overflow) r = a / b;
      break;
  }
  if (overflow) return fail(at, fmt::format("result of '{}' overflows 64 bits", op));
  return r;
}

}  // namespace

std::variant<int64_t, SizeError> evaluate_size(std::string_view text) {
  return SizeParser(text).run();
}

}  // namespace hmmsim::scenario
