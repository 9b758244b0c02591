// kotsu/text/chat_messages: what a chat template renders: a conversation's turns (role and content) and an
// instruction example (a prompt/completion pair or a conversation). Plain data; data/instruction_data reads
// them from files, text/chat_format renders them.
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

}  // namespace kotsu
