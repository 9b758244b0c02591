// kotsu/export/onnx_text: the ONNX graph of a text classifier (BERT, RoBERTa, DistilBERT), operator for
// operator the forward pass of models/bert and models/distilbert in inference mode.
// Inputs: input_ids, attention_mask (and token_type_ids when the model has token types), int64
// [batch, sequence]; outputs: logits and probabilities (softmax), float [batch, labels].
#pragma once
#include "kotsu/export/onnx_graph.hpp"
#include "kotsu/models/text_model.hpp"

namespace kotsu {

void build_text_classifier_onnx(OnnxGraph& g, TextModel& m);

}  // namespace kotsu
