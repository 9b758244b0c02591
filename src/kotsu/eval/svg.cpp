#include "kotsu/eval/svg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace kotsu::svg {

namespace {

const char* kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr int kLeft = 56, kRight = 16, kTop = 30, kBottom = 44;

std::string num(double v) {
  if (std::abs(v) >= 1e5 || (std::abs(v) < 1e-3 && v != 0)) return fmt::format("{:.2g}", v);
  std::string s = fmt::format("{:.4f}", v);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

// "Nice" ticks (1, 2, 5 x 10^k) covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int want = 5) {
  const double range = hi - lo;
  const double raw = range / want, mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

struct Frame {
  double x0, x1, y0, y1;
  int w, h;
  int bottom = kBottom;  // room under the plot for tick and axis labels
  double px(double x) const { return kLeft + (x - x0) / (x1 - x0) * (w - kLeft - kRight); }
  double py(double y) const { return h - bottom - (y - y0) / (y1 - y0) * (h - kTop - bottom); }
};

std::string open_svg(const Axes& a) {
  return fmt::format("<figure class=\"chart\" id=\"{}\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">"
                     "<title>{}</title><text x=\"{}\" y=\"18\" class=\"chart-title\">{}</text>",
                     escape(a.id), a.width, a.height, a.width, a.height, escape(a.title), kLeft, escape(a.title));
}

// The frame: grid lines, tick labels and axis labels.
std::string axes_svg(const Frame& f, const Axes& a) {
  std::string s;
  for (double t : ticks(f.x0, f.x1))
    s += fmt::format("<line class=\"grid\" x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\"/><text class=\"tick\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                     f.px(t), kTop, f.px(t), f.h - kBottom, f.px(t), f.h - kBottom + 14, num(t));
  for (double t : ticks(f.y0, f.y1))
    s += fmt::format("<line class=\"grid\" x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\"/><text class=\"tick\" x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>",
                     kLeft, f.py(t), f.w - kRight, f.py(t), kLeft - 5, f.py(t) + 4, num(t));
  s += fmt::format("<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>", kLeft, kTop, f.w - kLeft - kRight, f.h - kTop - kBottom);
  s += fmt::format("<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>", (kLeft + f.w - kRight) / 2, f.h - 8,
                   escape(a.x_label));
  s += fmt::format("<text class=\"axis-label\" transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
                   (kTop + f.h - kBottom) / 2, escape(a.y_label));
  if (a.diagonal) {
    const double lo = std::max(f.x0, f.y0), hi = std::min(f.x1, f.y1);
    if (hi > lo)
      s += fmt::format("<line class=\"diagonal\" x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>", f.px(lo), f.py(lo), f.px(hi), f.py(hi));
  }
  return s;
}

void fit(double& lo, double& hi, double data_lo, double data_hi) {
  if (lo != hi) return;
  lo = data_lo;
  hi = data_hi;
  if (!(hi > lo)) {  // one value (or none): a unit range around it
    lo = std::isfinite(data_lo) ? data_lo - 0.5 : 0;
    hi = lo + 1;
  } else {
    const double pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
  }
}

}  // namespace

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string line_chart(const std::vector<Series>& series, const Axes& a) {
  double xl = std::numeric_limits<double>::infinity(), xh = -xl, yl = xl, yh = -xl;
  size_t points = 0;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xl = std::min(xl, s.x[i]), xh = std::max(xh, s.x[i]), yl = std::min(yl, s.y[i]), yh = std::max(yh, s.y[i]);
        ++points;
      }
  std::string out = open_svg(a);
  if (points == 0) return out + fmt::format("<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data</text></svg></figure>", a.width / 2, a.height / 2);
  Frame f{a.x_min, a.x_max, a.y_min, a.y_max, a.width, a.height};
  fit(f.x0, f.x1, xl, xh);
  fit(f.y0, f.y1, yl, yh);
  out += axes_svg(f, a);
  std::string legend;
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const std::string color = s.color.empty() ? kPalette[k % 10] : s.color;
    std::string path, dots;
    bool pen_down = false;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        pen_down = false;
        continue;
      }
      path += fmt::format("{}{:.1f},{:.1f}", pen_down ? " L" : (path.empty() ? "M" : " M"), f.px(s.x[i]), f.py(s.y[i]));
      pen_down = true;
      if (s.markers)
        dots += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}: {} = {}, {} = {}</title></circle>", f.px(s.x[i]),
                            f.py(s.y[i]), color, escape(s.name), escape(a.x_label), num(s.x[i]), escape(a.y_label), num(s.y[i]));
    }
    out += fmt::format("<path class=\"series\" d=\"{}\" stroke=\"{}\"{}><title>{}</title></path>{}", path, color,
                       s.dashed ? " stroke-dasharray=\"5 4\"" : "", escape(s.name), dots);
    const int ly = kTop + 8 + 15 * static_cast<int>(k);
    legend += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"{}/><text class=\"legend\" x=\"{}\" y=\"{}\">{}</text>",
                          a.width - kRight - 150, ly, a.width - kRight - 132, ly, color, s.dashed ? " stroke-dasharray=\"5 4\"" : "",
                          a.width - kRight - 128, ly + 4, escape(s.name.size() > 24 ? s.name.substr(0, 23) + "…" : s.name));
  }
  if (series.size() > 1 && series.size() <= 12) out += "<g class=\"legend-box\">" + legend + "</g>";
  return out + "</svg></figure>";
}

std::string bar_chart(const std::vector<std::string>& labels, const std::vector<double>& values, const Axes& a, const std::vector<bool>& highlight) {
  std::string out = open_svg(a);
  if (values.empty()) return out + "<text class=\"empty\" x=\"50%\" y=\"50%\" text-anchor=\"middle\">no data</text></svg></figure>";
  Frame f{0, static_cast<double>(values.size()), a.y_min, a.y_max, a.width, a.height, values.size() <= 30 ? 80 : kBottom};
  fit(f.y0, f.y1, 0, *std::max_element(values.begin(), values.end()));
  f.y0 = std::min(f.y0, 0.0);
  std::string s;
  for (double t : ticks(f.y0, f.y1))
    s += fmt::format("<line class=\"grid\" x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\"/><text class=\"tick\" x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>",
                     kLeft, f.py(t), f.w - kRight, f.py(t), kLeft - 5, f.py(t) + 4, num(t));
  out += s;
  const double bw = (f.px(1) - f.px(0));
  for (size_t i = 0; i < values.size(); ++i) {
    const bool hot = i < highlight.size() && highlight[i];
    out += fmt::format("<rect class=\"bar{}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"><title>{}: {}</title></rect>", hot ? " hot" : "",
                       f.px(static_cast<double>(i)) + bw * 0.1, f.py(values[i]), bw * 0.8, f.py(f.y0) - f.py(values[i]), escape(labels[i]), num(values[i]));
    if (values.size() <= 30)
      out += fmt::format("<text class=\"tick\" text-anchor=\"end\" transform=\"translate({:.1f} {}) rotate(-40)\">{}</text>", f.px(i + 0.5),
                         f.h - f.bottom + 12, escape(labels[i].size() > 14 ? labels[i].substr(0, 13) + "…" : labels[i]));
  }
  out += fmt::format("<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>", kLeft, kTop, f.w - kLeft - kRight, f.h - kTop - f.bottom);
  out += fmt::format("<text class=\"axis-label\" transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>", (kTop + f.h - f.bottom) / 2,
                     escape(a.y_label));
  return out + "</svg></figure>";
}

std::string reliability_chart(const std::vector<Bin>& bins, const Axes& a) {
  std::string out = open_svg(a);
  Frame f{0, 1, 0, 1, a.width, a.height};
  Axes d = a;
  d.diagonal = true;
  out += axes_svg(f, d);
  for (const auto& b : bins) {
    if (b.count == 0) continue;
    const double x = f.px(b.low), w = f.px(b.high) - f.px(b.low);
    out += fmt::format("<rect class=\"bar\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"><title>confidence {}-{}: {} examples, accuracy {}, mean confidence {}</title></rect>",
                       x + 1, f.py(b.accuracy), w - 2, f.py(0) - f.py(b.accuracy), num(b.low), num(b.high), b.count, num(b.accuracy), num(b.confidence));
    const double top = std::max(b.accuracy, b.confidence), bottom = std::min(b.accuracy, b.confidence);
    out += fmt::format("<rect class=\"gap\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"><title>gap {}</title></rect>", x + 1, f.py(top),
                       w - 2, f.py(bottom) - f.py(top), num(b.confidence - b.accuracy));
  }
  return out + "</svg></figure>";
}

std::string heat_map(const std::vector<std::vector<int64_t>>& counts, const std::vector<std::string>& labels, const std::string& id,
                     const std::string& title) {
  const size_t k = counts.size();
  const int cell = k == 0 ? 30 : std::clamp(static_cast<int>(560 / k), 6, 44);
  const int label_w = k <= 40 ? 120 : 0, top = 30 + label_w, left = label_w + 10;
  const int side = cell * static_cast<int>(k);
  const int width = std::max(left + side + 10, 340), height = top + side + 30;
  std::string out = fmt::format("<figure class=\"chart\" id=\"{}\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">"
                                "<title>{}</title><text x=\"10\" y=\"18\" class=\"chart-title\">{}</text>",
                                escape(id), width, height, width, height, escape(title), escape(title));
  for (size_t r = 0; r < k; ++r) {
    int64_t row_sum = 0;
    for (int64_t v : counts[r]) row_sum += v;
    for (size_t c = 0; c < k; ++c) {
      const double share = row_sum ? static_cast<double>(counts[r][c]) / static_cast<double>(row_sum) : 0.0;
      // diagonal in blue, errors in red, intensity = share of the row
      const int light = static_cast<int>(std::lround(255 - 200 * share));
      const std::string fill = r == c ? fmt::format("rgb({},{},255)", light, light) : fmt::format("rgb(255,{},{})", light, light);
      out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" class=\"cell\"><title>true {} / predicted {}: {} ({}% of the class)</title></rect>",
                         left + static_cast<int>(c) * cell, top + static_cast<int>(r) * cell, cell, cell, fill, escape(labels[r]), escape(labels[c]),
                         counts[r][c], num(100 * share));
      if (cell >= 22 && counts[r][c] > 0)
        out += fmt::format("<text class=\"cell-count\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>", left + static_cast<int>(c) * cell + cell / 2,
                           top + static_cast<int>(r) * cell + cell / 2 + 4, counts[r][c]);
    }
  }
  if (label_w > 0)
    for (size_t i = 0; i < k; ++i) {
      const std::string l = escape(labels[i].size() > 16 ? labels[i].substr(0, 15) + "…" : labels[i]);
      out += fmt::format("<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", left - 4, top + static_cast<int>(i) * cell + cell / 2 + 4, l);
      out += fmt::format("<text class=\"tick\" transform=\"translate({} {}) rotate(-60)\">{}</text>", left + static_cast<int>(i) * cell + cell / 2 + 3, top - 4, l);
    }
  out += fmt::format("<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">predicted class (columns) / true class (rows)</text>",
                     left + side / 2, top + side + 20);
  return out + "</svg></figure>";
}

}  // namespace kotsu::svg
