//! What a RUN step's process sees, as Docker users expect it: USER by name (with
//! supplementary groups) or uid:gid, WORKDIR created, SHELL, the exec form, ENV and
//! ARG (ARG values visible to RUN only, not in the image), and proxy build args that
//! reach the process without changing the cache key.

mod common;

use common::{BUSYBOX, Context, State, oci_dir_config, ready, step_output, text, value_of};

fn sorted_ids(s: &str) -> Vec<u32> {
    let mut v: Vec<u32> = s
        .split_whitespace()
        .map(|g| {
            g.parse()
                .unwrap_or_else(|_| panic!("not a gid list: {s:?}"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn user_by_name_with_supplementary_groups_and_numeric_ids() {
    if !ready("user_by_name_with_supplementary_groups_and_numeric_ids") {
        return;
    }
    let df = format!(
        r#"FROM {BUSYBOX}
RUN echo 'app:x:1000:1001:App:/home/app:/bin/sh' >> /etc/passwd && \
    echo 'app:x:1001:' >> /etc/group && \
    echo 'wheel:x:10:root,app' >> /etc/group && \
    echo 'extra:x:2000:other,app' >> /etc/group && \
    echo 'unrelated:x:3000:other' >> /etc/group && \
    mkdir -p /home/app && chown app:app /home/app
USER app
RUN echo "name=$(id -un):$(id -u):$(id -g)"; echo "name_groups=$(id -G)"; echo "name_home=$HOME"; \
    touch /home/app/made-by-app; echo "owner=$(stat -c %u:%g /home/app/made-by-app)"
USER app:wheel
RUN echo "with_group=$(id -u):$(id -g)"; echo "with_group_groups=$(id -G)"
USER 1234:5678
RUN echo "numeric=$(id -u):$(id -g)"; echo "numeric_groups=$(id -G)"
USER 1000
RUN echo "uid_only=$(id -u):$(id -g)"; echo "uid_only_groups=$(id -G)"
USER nobody
RUN echo "nobody=$(id -u):$(id -g)"
"#
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let o = state.build(&[ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let v = |k: &str| value_of(&err, k).unwrap_or_else(|| panic!("no {k}= in\n{err}"));

    assert_eq!(v("name"), "app:1000:1001");
    // The primary group and every group that lists the user, no other.
    assert_eq!(sorted_ids(&v("name_groups")), vec![10, 1001, 2000]);
    assert_eq!(v("name_home"), "/home/app");
    assert_eq!(v("owner"), "1000:1001");
    // An explicit group replaces the supplementary groups, as in Docker.
    assert_eq!(v("with_group"), "1000:10");
    assert_eq!(sorted_ids(&v("with_group_groups")), vec![10]);
    // uid:gid needs no passwd entry.
    assert_eq!(v("numeric"), "1234:5678");
    assert_eq!(sorted_ids(&v("numeric_groups")), vec![5678]);
    // A uid alone takes its group and supplementary groups from the files.
    assert_eq!(v("uid_only"), "1000:1001");
    assert_eq!(sorted_ids(&v("uid_only_groups")), vec![10, 1001, 2000]);
    assert_eq!(v("nobody"), "65534:65534");
}

#[test]
fn a_user_missing_from_passwd_fails_the_step_plainly() {
    if !ready("a_user_missing_from_passwd_fails_the_step_plainly") {
        return;
    }
    let df = format!("FROM {BUSYBOX}\nUSER ghost\nRUN echo should-not-run\n");
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let o = state.build(&[ctx.arg()]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unable to find user ghost"), "{err}");
    assert!(!step_output(&err).iter().any(|l| l == "should-not-run"));
}

#[test]
fn workdir_shell_exec_form_env_and_args() {
    if !ready("workdir_shell_exec_form_env_and_args") {
        return;
    }
    let df = format!(
        r#"FROM {BUSYBOX}
ARG BUILD_ONLY=default-arg
ENV FROM_ENV=env-value
WORKDIR /deep/new/dir
RUN echo "pwd=$(pwd)"; echo "arg=$BUILD_ONLY"; echo "env=$FROM_ENV"; echo "path=$PATH"; touch here
WORKDIR relative/more
RUN echo "pwd2=$(pwd)"
RUN ["/bin/echo", "exec=$FROM_ENV not expanded"]
RUN ["sh", "-c", "echo exec_shell=$FROM_ENV"]
SHELL ["/bin/echo", "shell-was"]
RUN these words
SHELL ["/bin/sh", "-c"]
USER nobody
WORKDIR /made/for/nobody
RUN echo "nobody_pwd=$(pwd)"
"#
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let layout = ctx.path().join("layout");
    let rootfs = ctx.path().join("rootfs");
    let o = state.build(&[
        "--build-arg",
        "BUILD_ONLY=given-arg",
        "-o",
        &format!("type=oci,dest={},tar=false", layout.display()),
        "-o",
        &format!("type=local,dest={}", rootfs.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let v = |k: &str| value_of(&err, k).unwrap_or_else(|| panic!("no {k}= in\n{err}"));
    assert_eq!(v("pwd"), "/deep/new/dir");
    assert_eq!(v("arg"), "given-arg");
    assert_eq!(v("env"), "env-value");
    assert_eq!(
        v("path"),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(v("pwd2"), "/deep/new/dir/relative/more");
    assert_eq!(v("exec"), "$FROM_ENV not expanded");
    assert_eq!(v("exec_shell"), "env-value");
    let lines = step_output(&err);
    assert!(
        lines.iter().any(|l| l == "shell-was these words"),
        "SHELL was not used: {lines:?}"
    );
    assert_eq!(v("nobody_pwd"), "/made/for/nobody");
    assert!(rootfs.join("deep/new/dir/here").is_file());

    let config = oci_dir_config(&layout);
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(env.contains(&"FROM_ENV=env-value"), "{env:?}");
    assert!(
        !env.iter().any(|e| e.starts_with("BUILD_ONLY")),
        "an ARG leaked into the image's Env: {env:?}"
    );
    assert_eq!(config["config"]["WorkingDir"], "/made/for/nobody");
    assert_eq!(config["config"]["User"], "nobody");
}

#[test]
fn proxy_args_reach_the_process_but_not_the_cache_key_or_image() {
    if !ready("proxy_args_reach_the_process_but_not_the_cache_key_or_image") {
        return;
    }
    let df = format!(
        "FROM {BUSYBOX}\nRUN echo \"upper=$HTTP_PROXY\"; echo \"lower=$http_proxy\"; echo \"no=$NO_PROXY\"; echo \"https=$HTTPS_PROXY\"\n"
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let layout = ctx.path().join("layout");
    let out = format!("type=oci,dest={},tar=false", layout.display());
    let o = state.build(&[
        "--build-arg",
        "HTTP_PROXY=http://proxy-one.invalid:3128",
        "--build-arg",
        "no_proxy=localhost,127.0.0.1",
        "-o",
        &out,
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let v = |k: &str| value_of(&err, k).unwrap_or_else(|| panic!("no {k}= in\n{err}"));
    assert_eq!(v("upper"), "http://proxy-one.invalid:3128");
    assert_eq!(v("lower"), "http://proxy-one.invalid:3128");
    assert_eq!(v("no"), "localhost,127.0.0.1");
    assert_eq!(v("https"), "");
    let config_json = oci_dir_config(&layout).to_string();
    assert!(
        !config_json.contains("proxy-one"),
        "the proxy is in the image config: {config_json}"
    );

    // Another proxy: the step is not run again.
    let o = state.build(&[
        "--build-arg",
        "HTTP_PROXY=http://proxy-two.invalid:3128",
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(err.matches(" CACHED").count(), 1, "{err}");
    assert_eq!(value_of(&err, "upper"), None, "{err}");

    // And when it does run, it sees the new one.
    let o = state.build(&[
        "--no-cache",
        "--build-arg",
        "HTTP_PROXY=http://proxy-two.invalid:3128",
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        value_of(&err, "upper").as_deref(),
        Some("http://proxy-two.invalid:3128")
    );
}
