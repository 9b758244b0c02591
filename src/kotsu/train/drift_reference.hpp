// kotsu/train/drift_reference: the sample a prediction log is compared with by `kotsu drift`: a text run's
// own predictions on the texts it was validated on (its --val-data file, or the held-out split of --data
// recomputed from run.json's rows, fraction and seed, so exactly the rows validation used; the training data
// when the run had no validation), or on a file the user names. Lengths are characters of the texts as
// given (the server logs them before any masking); texts are masked first when the run masked its data.
// A picture run: its predictions on its validation pictures (the same split training made), decoded as the
// server decodes them; lengths are decoded pixels (width x height), as the server logs them.
#pragma once
#include <string>

#include "kotsu/eval/drift.hpp"

namespace kotsu {

// source receives what the sample was computed on, for the report. Throws kotsu::Error for a model
// directory without run.json and no reference_file.
DriftSample run_reference_sample(const std::string& run_dir, const std::string& reference_file, int64_t batch_size,
                                 const std::string& device, std::string* source);

}  // namespace kotsu
