//! BuildKit's shell lexer vectors (`shell/envVarTest`, `shell/wordsTest`).

mod common;

use kiln_frontend::shell::{EnvList, Lex};

/// Every `A` and `U` line of envVarTest: one word expanded with `\` as escape.
#[test]
fn env_var_test_vectors() {
    let Some(dir) = common::vectors_dir() else {
        return;
    };
    let path = dir.join("shell/envVarTest");
    let text = common::read_text(&path);
    let env = EnvList::new(&["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
    let lex = Lex::new('\\');
    let mut checked = 0;
    let mut failures = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            3,
            "line {number} of {}: {line:?}",
            path.display()
        );
        let (platform, source, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        match platform {
            "W" => continue,
            "A" | "U" => {}
            other => panic!("line {number}: unknown platform tag {other:?}"),
        }
        checked += 1;
        let got = lex.process_word(source, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(r), expected) => expected != "error" && r.result == expected,
            (Err(_), _) => false,
        };
        if !ok {
            failures.push(format!(
                "line {number}: {source:?} expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        checked > 200,
        "only {checked} vectors found in {}",
        path.display()
    );
}

/// Every line of wordsTest: words split after expansion, `ENV` lines adding variables.
#[test]
fn words_test_vectors() {
    let Some(dir) = common::vectors_dir() else {
        return;
    };
    let path = dir.join("shell/wordsTest");
    let text = common::read_text(&path);
    let lex = Lex::new('\\');
    let mut envs: Vec<String> = Vec::new();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            envs.push(rest.trim_start_matches(' ').to_string());
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            2,
            "line {number} of {}: {line:?}",
            path.display()
        );
        let input = fields[0].trim();
        let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
        checked += 1;
        let got = match lex.process_words(input, &EnvList::new(&envs)) {
            Ok(words) => words,
            Err(_) => vec!["error".to_string()],
        };
        if got != expected {
            failures.push(format!(
                "line {number}: {input:?} expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        checked > 20,
        "only {checked} vectors found in {}",
        path.display()
    );
}
