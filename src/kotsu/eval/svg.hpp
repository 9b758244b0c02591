// kotsu/eval/svg: the charts of kotsu's HTML pages as inline SVG strings (line and scatter charts with
// axes, ticks and a legend; bar charts; heat maps), so a report is one file that opens without network.
// Written by hand: no Debian C++ library draws SVG charts, and a bundled JavaScript charting library
// would need a browser runtime to check. Every text is escaped; every element with data has a <title>
// tooltip.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kotsu::svg {

std::string escape(const std::string& s);  // &, <, >, " and ' as entities

struct Series {
  std::string name;
  std::vector<double> x, y;  // NaN points are skipped
  bool markers = false;      // draw a dot at each point (with a tooltip)
  bool dashed = false;
  std::string color;         // empty: the palette's next colour
};

struct Axes {
  std::string id, title, x_label, y_label;
  double x_min = 0, x_max = 0, y_min = 0, y_max = 0;  // min == max: fitted to the data
  bool diagonal = false;  // the y = x line (ROC chance level, perfect calibration)
  int width = 460, height = 320;
};

// Lines (and markers) of the series on shared axes; an empty chart says "no data".
std::string line_chart(const std::vector<Series>& series, const Axes& axes);

// Vertical bars, one per label (value >= 0), with the value as tooltip; `highlight` bars drawn in red.
std::string bar_chart(const std::vector<std::string>& labels, const std::vector<double>& values, const Axes& axes,
                      const std::vector<bool>& highlight = {});

// The reliability diagram: per confidence bin a bar of its accuracy, the gap to the bin's mean
// confidence shaded, the diagonal of perfect calibration.
struct Bin {
  double low, high, confidence, accuracy;
  int64_t count;
};
std::string reliability_chart(const std::vector<Bin>& bins, const Axes& axes);

// A confusion-matrix heat map: counts[true][predicted]; colour = the share of the true class's row.
std::string heat_map(const std::vector<std::vector<int64_t>>& counts, const std::vector<std::string>& labels, const std::string& id,
                     const std::string& title);

}  // namespace kotsu::svg
