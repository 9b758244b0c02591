// kotsu/data/instruction_data: instruction-tuning examples for causal LMs from a JSONL file, one object per
// line: {"prompt": "...", "completion": "..."} (the completion is what the model learns to write), or
// {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]} (the assistant turns are
// learnt; at least one is required). Bad lines are refused naming the file, line and field.
#pragma once
#include <string>
#include <vector>

namespace kotsu {

struct ChatMessage {
  std::string role, content;
};

struct InstructionExample {
  std::string prompt, completion;     // prompt/completion rows
  std::vector<ChatMessage> messages;  // chat rows
  bool is_chat() const { return !messages.empty(); }
};

std::vector<InstructionExample> read_instruction_data(const std::string& path);

}  // namespace kotsu
