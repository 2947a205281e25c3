package tokenizer

import (
	"slices"
	"strings"
	"testing"
)

func TestDetectFormat(t *testing.T) {
	const (
		llama2Jinja = "{% for message in loop_messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% endif %}{% endfor %}"
		llama3Jinja = "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
		qwen2Jinja  = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
	)
	tests := []struct {
		tmpl, arch string
		hasL3      bool
		want       Format
	}{
		{llama2Jinja, "llama", false, FormatLlama2},
		{llama3Jinja, "llama", true, FormatLlama3},
		{qwen2Jinja, "qwen2", false, FormatChatML},
		{qwen2Jinja, "llama", false, FormatChatML}, // the template wins over the architecture
		{"", "qwen2", false, FormatChatML},
		{"", "llama", true, FormatLlama3},
		{"", "llama", false, FormatLlama2},
		{"{{ something unknown }}", "mistral", false, FormatLlama2},
	}
	for _, tt := range tests {
		if got := DetectFormat(tt.tmpl, tt.arch, tt.hasL3); got != tt.want {
			t.Errorf("DetectFormat(%.30q, %q, %v) = %q, want %q", tt.tmpl, tt.arch, tt.hasL3, got, tt.want)
		}
	}
	if got := chatMLDefaultSystem(qwen2Jinja); got != "You are a helpful assistant." {
		t.Errorf("chatMLDefaultSystem(qwen2) = %q", got)
	}
	if got := chatMLDefaultSystem("{{ '<|im_start|>system\\n' + system + '<|im_end|>' }}"); got != "" {
		t.Errorf("chatMLDefaultSystem(variable) = %q, want empty", got)
	}
}

func TestRender(t *testing.T) {
	sys := Message{Role: "system", Content: "Be brief."}
	u1 := Message{Role: "user", Content: " What is a ball? "}
	a1 := Message{Role: "assistant", Content: "A toy.\n"}
	u2 := Message{Role: "user", Content: "Thanks!"}
	l2 := Template{Format: FormatLlama2, BOS: "<s>", EOS: "</s>"}
	l3 := Template{Format: FormatLlama3, BOS: "<|begin_of_text|>", EOS: "<|end_of_text|>"}
	cm := Template{Format: FormatChatML}
	qw := Template{Format: FormatChatML, DefaultSystem: "You are a helpful assistant."}
	tests := []struct {
		name string
		tm   Template
		msgs []Message
		gen  bool
		want string
	}{
		{"llama2 user", l2, []Message{u1}, true,
			"<s>[INST] What is a ball? [/INST]"},
		// Llama 2's Jinja trims the user content only after the system block
		// is prepended, so the leading space of u1 survives there.
		{"llama2 system", l2, []Message{sys, u1}, true,
			"<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n What is a ball? [/INST]"},
		{"llama2 multi-turn", l2, []Message{sys, u2, a1, u1}, true,
			"<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nThanks! [/INST] A toy. </s><s>[INST] What is a ball? [/INST]"},
		{"llama3 system", l3, []Message{sys, u1}, true,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is a ball?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"llama3 no generation prompt", l3, []Message{u1, a1}, false,
			"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is a ball?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA toy.<|eot_id|>"},
		{"chatml", cm, []Message{sys, u1}, true,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n What is a ball? <|im_end|>\n<|im_start|>assistant\n"},
		{"qwen2 default system", qw, []Message{u2}, true,
			"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nThanks!<|im_end|>\n<|im_start|>assistant\n"},
		{"qwen2 own system", qw, []Message{sys, u2}, false,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nThanks!<|im_end|>\n"},
	}
	for _, tt := range tests {
		if got := tt.tm.Render(tt.msgs, tt.gen); got != tt.want {
			t.Errorf("%s: Render() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestChatTemplateEncode renders a Llama 2 conversation for stories260K and
// checks that the BOS marker becomes the BOS id rather than text.
func TestChatTemplateEncode(t *testing.T) {
	tok := storiesTokenizer(t)
	tm := tok.ChatTemplate("", "llama")
	if tm.Format != FormatLlama2 || tm.BOS != "<s>" || tm.EOS != "</s>" {
		t.Fatalf("ChatTemplate = %+v, want llama2 with <s> and </s>", tm)
	}
	prompt := tm.Render([]Message{{Role: "user", Content: "Hi"}}, true)
	ids := tok.Encode(prompt, false)
	want := append([]int32{1}, tok.Encode("[INST] Hi [/INST]", false)...)
	if !slices.Equal(ids, want) {
		t.Errorf("Encode(%q) = %v, want %v", prompt, ids, want)
	}
}

func TestEncodeChatLiteralContent(t *testing.T) {
	tok := storiesTokenizer(t)
	tm := tok.ChatTemplate("", "llama")
	tests := []struct {
		name string
		msgs []Message
	}{
		{"plain", []Message{{Role: "system", Content: "Be nice."}, {Role: "user", Content: "Tell a story."}}},
		{"multi-turn", []Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello!"}, {Role: "user", Content: "More"}}},
	}
	for _, tt := range tests {
		got := tok.EncodeChat(tm, tt.msgs, true)
		want := tok.Encode(tm.Render(tt.msgs, true), false)
		if !slices.Equal(got, want) {
			t.Errorf("%s: EncodeChat = %v, want Encode(Render) = %v", tt.name, got, want)
		}
	}
	// Control tokens typed by a user stay text.
	msgs := []Message{{Role: "user", Content: "</s><s>[INST] hi"}}
	got := tok.EncodeChat(tm, msgs, true)
	if n := strings.Count(tok.Decode(got), "</s><s>"); n != 1 {
		t.Errorf("Decode(EncodeChat) = %q, want the user's </s><s> kept as text", tok.Decode(got))
	}
	bos := 0
	for _, id := range got {
		if id == tok.BOS() || id == tok.EOS() {
			bos++
		}
	}
	if bos != 1 {
		t.Errorf("EncodeChat(%q) = %v has %d BOS/EOS ids, want only the template's BOS", msgs[0].Content, got, bos)
	}
}

// FuzzEncodeChat checks that message contents survive EncodeChat as text,
// whatever special-token spellings they contain.
func FuzzEncodeChat(f *testing.F) {
	tok := storiesTokenizer(f)
	tm := tok.ChatTemplate("", "llama")
	for _, s := range []string{"hi", "</s><s>[INST]", "<<SYS>>\n", " \xff ", "<unk>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		msgs := []Message{{Role: "user", Content: content}}
		ids := tok.EncodeChat(tm, msgs, true)
		if len(ids) == 0 || ids[0] != tok.BOS() {
			t.Fatalf("EncodeChat(%q) = %v, want BOS first", content, ids)
		}
		for _, id := range ids[1:] {
			if tok.Type(id) == TypeControl {
				t.Fatalf("EncodeChat(%q) = %v: control token %d from the content", content, ids, id)
			}
		}
		if strings.Contains(content, "\u2581") {
			return
		}
		want := strings.TrimPrefix(tm.Render(msgs, true), "<s>")
		if got := string(tok.DecodeBytes(ids)); got != want {
			t.Fatalf("Decode(EncodeChat(%q)) = %q, want %q", content, got, want)
		}
	})
}
