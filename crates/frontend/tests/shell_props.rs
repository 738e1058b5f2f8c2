//! Word expansion never panics, whatever the input.

use kiln_frontend::shell::{EnvList, Lex};
use proptest::prelude::*;

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("$".to_string()),
        Just("${".to_string()),
        Just("}".to_string()),
        Just(":".to_string()),
        Just("-".to_string()),
        Just("+".to_string()),
        Just("?".to_string()),
        Just("#".to_string()),
        Just("%".to_string()),
        Just("/".to_string()),
        Just("*".to_string()),
        Just("[".to_string()),
        Just("\\".to_string()),
        Just("`".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("<<".to_string()),
        Just(" ".to_string()),
        Just("A".to_string()),
        Just("EMPTY".to_string()),
        Just("0".to_string()),
        "\\PC{0,3}",
    ]
}

fn lexers() -> Vec<Lex> {
    let mut out = Vec::new();
    for escape in ['\\', '`'] {
        for bits in 0..16u8 {
            let mut lex = Lex::new(escape);
            lex.raw_quotes = bits & 1 != 0;
            lex.raw_escapes = bits & 2 != 0;
            lex.skip_process_quotes = bits & 4 != 0;
            lex.skip_unset_env = bits & 8 != 0;
            out.push(lex);
        }
    }
    out
}

fn exercise(input: &str) {
    let env = EnvList::new(&["A=a b*c", "EMPTY=", "P=/x/y"]);
    for lex in lexers() {
        let one = lex.process_word(input, &env);
        let many = lex.process_words(input, &env);
        // Both walk the same input: they fail together.
        assert_eq!(one.is_ok(), many.is_ok(), "{input:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_text_never_panics(input in "\\PC{0,40}") {
        exercise(&input);
    }

    #[test]
    fn shell_like_text_never_panics(parts in prop::collection::vec(fragment(), 0..30)) {
        exercise(&parts.concat());
    }
}
