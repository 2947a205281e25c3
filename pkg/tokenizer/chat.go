package tokenizer

import (
	"strings"
	"unicode"
)

// Message is one turn of a chat conversation. Role is "system", "user" or
// "assistant".
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Format names a chat prompt format.
type Format string

// The chat formats that Render knows.
const (
	// FormatLlama2 is Meta's Llama 2 chat format:
	// "<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s>".
	FormatLlama2 Format = "llama2"
	// FormatLlama3 is Meta's Llama 3 format with
	// "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>" turns.
	FormatLlama3 Format = "llama3"
	// FormatChatML is "<|im_start|>{role}\n{content}<|im_end|>\n" turns (Qwen2).
	FormatChatML Format = "chatml"
)

// Template renders conversations in one format. The zero value is unusable;
// build it with DetectTemplate or Tokenizer.ChatTemplate.
type Template struct {
	Format Format
	// BOS and EOS are the texts of the vocabulary's BOS and EOS tokens, which
	// the Llama 2 and Llama 3 formats write into the prompt.
	BOS, EOS string
	// DefaultSystem is the system message ChatML adds when a conversation
	// has none ("" adds nothing); Qwen2's template has one.
	DefaultSystem string
}

// DetectFormat chooses the format of a GGUF tokenizer.chat_template (a
// Jinja template) by its markers, falling back to the architecture
// (general.architecture) when the template is empty or unknown: qwen2 uses
// ChatML, llama uses Llama 3 when hasLlama3Tokens, else Llama 2.
func DetectFormat(chatTemplate, arch string, hasLlama3Tokens bool) Format {
	switch {
	case strings.Contains(chatTemplate, "<|start_header_id|>"):
		return FormatLlama3
	case strings.Contains(chatTemplate, "<|im_start|>"):
		return FormatChatML
	case strings.Contains(chatTemplate, "[INST]"):
		return FormatLlama2
	}
	switch arch {
	case "qwen2", "qwen", "qwen2moe", "qwen3":
		return FormatChatML
	}
	if hasLlama3Tokens {
		return FormatLlama3
	}
	return FormatLlama2
}

// ChatTemplate returns the template for this vocabulary, chosen from the
// GGUF tokenizer.chat_template string and general.architecture.
func (t *Tokenizer) ChatTemplate(chatTemplate, arch string) Template {
	_, hasL3 := t.ids["<|start_header_id|>"]
	tmpl := Template{
		Format: DetectFormat(chatTemplate, arch, hasL3),
		BOS:    t.Token(t.bos),
		EOS:    t.Token(t.eos),
	}
	if tmpl.Format == FormatChatML {
		tmpl.DefaultSystem = chatMLDefaultSystem(chatTemplate)
		if chatTemplate == "" && (arch == "qwen2" || arch == "qwen") {
			tmpl.DefaultSystem = "You are a helpful assistant."
		}
	}
	return tmpl
}

// chatMLDefaultSystem extracts the literal default system message of a
// ChatML Jinja template, as in Qwen2's
// "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}".
func chatMLDefaultSystem(jinja string) string {
	const marker = `<|im_start|>system\n`
	i := strings.Index(jinja, marker)
	if i < 0 {
		return ""
	}
	rest := jinja[i+len(marker):]
	j := strings.Index(rest, "<|im_end|>")
	if j <= 0 {
		return ""
	}
	msg := rest[:j]
	if strings.ContainsAny(msg, "'\"{}+") {
		return "" // not a literal: the template inserts a variable
	}
	return strings.ReplaceAll(msg, `\n`, "\n")
}

// chatBuilder accumulates a rendered prompt and the byte ranges that hold
// message contents, which EncodeChat encodes as literal text.
type chatBuilder struct {
	strings.Builder
	literals [][2]int
}

func (b *chatBuilder) literal(s string) {
	start := b.Len()
	b.WriteString(s)
	if b.Len() > start {
		b.literals = append(b.literals, [2]int{start, b.Len()})
	}
}

// Render writes msgs as a prompt. With addGenerationPrompt the prompt ends
// with the header of an assistant turn so that the model answers next (the
// Llama 2 format always ends a user turn with "[/INST]", which is already
// that). Roles other than system, user and assistant are written as given in
// Llama 3 and ChatML and treated as user turns in Llama 2.
func (tm Template) Render(msgs []Message, addGenerationPrompt bool) string {
	return tm.render(msgs, addGenerationPrompt).String()
}

func (tm Template) render(msgs []Message, addGenerationPrompt bool) *chatBuilder {
	b := &chatBuilder{}
	switch tm.Format {
	case FormatLlama3:
		tm.renderLlama3(b, msgs, addGenerationPrompt)
	case FormatChatML:
		tm.renderChatML(b, msgs, addGenerationPrompt)
	default:
		tm.renderLlama2(b, msgs)
	}
	return b
}

// EncodeChat renders msgs with tm and encodes the prompt. Special tokens
// are matched in the template's own text only: a message that contains
// "<|im_end|>" or "</s>" gets those characters as plain text, so users cannot
// forge turns. The template writes BOS itself where its format has one, so
// no BOS is added here.
func (t *Tokenizer) EncodeChat(tm Template, msgs []Message, addGenerationPrompt bool) []int32 {
	b := tm.render(msgs, addGenerationPrompt)
	return t.encodeWith(b.String(), false, true, b.literals)
}

// renderLlama2 follows the Jinja template that ships with Llama-2-chat:
// the system message goes into the first user turn inside <<SYS>> markers,
// contents are trimmed, user turns are "<s>[INST] … [/INST]" and assistant
// turns " … </s>".
func (tm Template) renderLlama2(b *chatBuilder, msgs []Message) {
	system := ""
	hasSystem := false
	for _, m := range msgs {
		switch m.Role {
		case "system":
			if hasSystem {
				system += "\n\n" + m.Content
			} else {
				system = m.Content
			}
			hasSystem = true
		case "assistant":
			b.WriteString(" ")
			b.literal(strings.TrimSpace(m.Content))
			b.WriteString(" ")
			b.WriteString(tm.EOS)
		default:
			b.WriteString(tm.BOS)
			b.WriteString("[INST] ")
			if hasSystem {
				// Jinja trims the joined text, which leaves the system
				// message alone and trims only the user content's tail.
				b.WriteString("<<SYS>>\n")
				b.literal(system)
				b.WriteString("\n<</SYS>>\n\n")
				b.literal(strings.TrimRightFunc(m.Content, unicode.IsSpace))
				system, hasSystem = "", false
			} else {
				b.literal(strings.TrimSpace(m.Content))
			}
			b.WriteString(" [/INST]")
		}
	}
	if hasSystem {
		// A system message with no user turn after it still reaches the model.
		b.WriteString(tm.BOS)
		b.WriteString("[INST] <<SYS>>\n")
		b.literal(system)
		b.WriteString("\n<</SYS>> [/INST]")
	}
}

// renderLlama3 follows Llama-3-Instruct's template: BOS, then per message
// "<|start_header_id|>role<|end_header_id|>\n\n" + trimmed content +
// "<|eot_id|>".
func (tm Template) renderLlama3(b *chatBuilder, msgs []Message, addGenerationPrompt bool) {
	b.WriteString(tm.BOS)
	for _, m := range msgs {
		b.WriteString("<|start_header_id|>")
		b.literal(m.Role)
		b.WriteString("<|end_header_id|>\n\n")
		b.literal(strings.TrimSpace(m.Content))
		b.WriteString("<|eot_id|>")
	}
	if addGenerationPrompt {
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
}

// renderChatML follows Qwen2's template: an optional default system turn
// when the conversation has none, then "<|im_start|>role\ncontent<|im_end|>\n"
// per message, contents untouched.
func (tm Template) renderChatML(b *chatBuilder, msgs []Message, addGenerationPrompt bool) {
	if tm.DefaultSystem != "" && (len(msgs) == 0 || msgs[0].Role != "system") {
		b.WriteString("<|im_start|>system\n")
		b.WriteString(tm.DefaultSystem)
		b.WriteString("<|im_end|>\n")
	}
	for _, m := range msgs {
		b.WriteString("<|im_start|>")
		b.literal(m.Role)
		b.WriteString("\n")
		b.literal(m.Content)
		b.WriteString("<|im_end|>\n")
	}
	if addGenerationPrompt {
		b.WriteString("<|im_start|>assistant\n")
	}
}
