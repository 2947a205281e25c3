package tributary.output_test

import data.tributary.output

moderate(text) := d if {
	d := output.decision with input as {"text": text, "redactions_before": 0, "limits": {"max_redactions": 0}}
}

test_clean_sentence_unchanged if {
	d := moderate("Orders ship within two business days.")
	d.text == "Orders ship within two business days."
	not d.block
	d.rules == []
}

test_email_redacted if {
	d := moderate("Write to alice.smith@example.com today.")
	d.text == "Write to [REDACTED:email] today."
	d.rules == ["pii.email"]
}

test_cn_mobile_variants_redacted if {
	every s in ["电话13812345678。", "Call +86 138-1234-5678.", "call 138 1234 5678 now"] {
		d := moderate(s)
		contains(d.text, "[REDACTED:phone]")
		not regex.match(`1[3-9][0-9]`, d.text)
	}
}

test_long_digit_run_not_a_phone if {
	d := moderate("Order 1381234567890123456789 shipped")
	d.rules == []
}

test_international_phone_redacted if {
	d := moderate("Call +1 415 555 2671 for help")
	d.text == "Call [REDACTED:phone] for help"
	d.rules == ["pii.phone.international"]
}

test_id_card_valid_checksum_redacted if {
	d := moderate("身份证号11010519491231002X，请核对")
	d.text == "身份证号[REDACTED:id_card]，请核对"
	d.rules == ["pii.id_card"]
}

test_id_card_bad_checksum_kept if {
	d := moderate("编号110105194912310021。")
	not "pii.id_card" in d.rules
}

test_bank_card_luhn_redacted if {
	d := moderate("Card 4111 1111 1111 1111 was charged.")
	d.text == "Card [REDACTED:bank_card] was charged."
}

test_bank_card_bad_luhn_kept if {
	d := moderate("Ticket 4111111111111112 closed.")
	d.rules == []
}

test_luhn if {
	output.luhn_valid("6222021234567890128") # 19 digits
	not output.luhn_valid("6222021234567890123")
	not output.luhn_valid("123456789012") # too short
}

test_system_prompt_leak_blocks if {
	d := moderate("Sure: You are Tributary, an enterprise knowledge assistant. Answer")
	d.block
	d.text == ""
	"leak.system_prompt" in d.rules
}

test_bulk_pii_blocks if {
	d := output.decision with input as {"text": "a@b.com", "redactions_before": 20, "limits": {"max_redactions": 0}}
	d.block
	"pii.bulk" in d.rules
}
