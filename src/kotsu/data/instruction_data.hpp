// kotsu/data/instruction_data: instruction-tuning examples for causal LMs from a JSONL file, one object per
// line: {"prompt": "...", "completion": "..."} (the completion is what the model learns to write), or
// {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]} (the assistant turns are
// learnt; at least one is required). Bad lines are refused naming the file, line and field.
#pragma once
#include <string>
#include <vector>

#include "kotsu/text/chat_messages.hpp"  // ChatMessage, InstructionExample

namespace kotsu {

std::vector<InstructionExample> read_instruction_data(const std::string& path);

}  // namespace kotsu
