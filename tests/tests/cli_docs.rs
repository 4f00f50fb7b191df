//! `plant completions` and `plant man`, generated from the clap definitions: the bash script
//! is valid bash (`bash -n`) and knows every command, zsh and fish get their own formats, and
//! there is one man page per command, each a roff page with its title.

mod foundation;

use foundation::plant;

/// The top-level commands, as `plant --help` lists them.
async fn commands() -> anyhow::Result<Vec<String>> {
    let help = plant(&["--help"]).await?;
    assert!(help.ok, "{}", help.stderr);
    let commands = help
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert!(commands.len() > 15, "{}", help.stdout);
    Ok(commands)
}

#[tokio::test]
async fn completions_are_valid_for_each_shell_and_know_every_command() -> anyhow::Result<()> {
    let commands = commands().await?;
    let bash = plant(&["completions", "bash"]).await?;
    assert!(bash.ok, "{}", bash.stderr);
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("plant.bash");
    std::fs::write(&script, &bash.stdout)?;
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()?;
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for command in &commands {
        assert!(
            bash.stdout.contains(command.as_str()),
            "bash completes {command}"
        );
    }
    let zsh = plant(&["completions", "zsh"]).await?;
    assert!(
        zsh.ok && zsh.stdout.starts_with("#compdef plant"),
        "{}",
        zsh.stderr
    );
    let fish = plant(&["completions", "fish"]).await?;
    assert!(
        fish.ok && fish.stdout.contains("complete -c plant"),
        "{}",
        fish.stderr
    );
    let bad = plant(&["completions", "tcsh"]).await?;
    assert!(
        !bad.ok && bad.stderr.contains("tcsh"),
        "an unknown shell is refused: {}",
        bad.stderr
    );
    Ok(())
}

#[tokio::test]
async fn there_is_a_man_page_per_command() -> anyhow::Result<()> {
    let commands = commands().await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().to_str().expect("UTF-8 temp dir");
    let made = plant(&["man", "--dir", out]).await?;
    assert!(made.ok, "{}", made.stderr);
    let main = std::fs::read_to_string(dir.path().join("plant.1"))?;
    assert!(main.contains(".TH PLANT 1"), "{main}");
    for command in &commands {
        let page = std::fs::read_to_string(dir.path().join(format!("plant-{command}.1")))?;
        let title = format!(".TH PLANT-{} 1", command.to_uppercase());
        assert!(page.contains(&title), "plant-{command}.1 has {title}");
        assert!(
            page.contains(&format!("plant {command}")),
            "plant-{command}.1 shows its synopsis"
        );
    }
    println!(
        "{} man pages: {}",
        commands.len() + 1,
        made.stdout.lines().count()
    );
    Ok(())
}
