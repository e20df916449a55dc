//! XML text helpers shared by the host driver ([`crate::hypervisor`]: storage volumes) and the
//! VM definitions ([`crate::vm::xml`]); below both, so neither imports the other for them.

/// Escapes text for XML element content and attribute values (either quote).
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_both_quotes() {
        assert_eq!(
            xml_escape(r#"a<b>&'c'"d""#),
            "a&lt;b&gt;&amp;&apos;c&apos;&quot;d&quot;"
        );
        assert_eq!(xml_escape("plain/path-1.qcow2"), "plain/path-1.qcow2");
    }
}
