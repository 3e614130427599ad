"""Old option spellings, still taken for one release: rewritten to today's before the
command line is parsed, each with a warning on stderr. ``--help`` shows only today's names
(tests/cli/test_option_names.py holds the table of names every command may use)."""

from __future__ import annotations

# command path -> old spelling -> new spelling
RENAMED: dict[tuple[str, ...], dict[str, str]] = {
    ("export",): {"--batch": "--batch-size"},
    ("profile",): {"--batch": "--batch-size", "--host": "--remote"},
    ("eval",): {"--split": "--subset"},
    ("split", "plan"): {"--host": "--remote", "--cuts": "--cut"},
    ("split", "run"): {"--model": "--model-name", "--link-bandwidth": "--bandwidth",
                       "--link-rtt": "--rtt", "--limit": "--samples"},
    ("serve",): {"--name": "--model-name"},
    ("export-triton",): {"--name": "--model-name"},
}
# Old list options that took one comma-separated value; their new spelling repeats.
COMMA_LISTS = {"--cuts"}
# command groups: their subcommands, and the one a group runs when none is named
GROUPS: dict[str, tuple[set[str], str | None]] = {
    "split": ({"points", "make", "run", "plan"}, "make"),
    "targets": ({"list", "show", "check", "validate", "add"}, None)}


def command_path(args: list[str]) -> tuple[str, ...]:
    """The subcommand ``args`` run (``split MODEL`` is ``split make``), ``()`` if none."""
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return ()
    if words[0] in GROUPS:
        subcommands, default = GROUPS[words[0]]
        sub = words[1] if len(words) > 1 and words[1] in subcommands else default
        return (words[0], sub) if sub else (words[0],)
    return (words[0],)


def rewrite(args: list[str]) -> tuple[list[str], list[str]]:
    """``args`` with old spellings replaced, and a warning for each old spelling used."""
    renamed = RENAMED.get(command_path(args), {})
    out: list[str] = []
    warnings: list[str] = []
    path = " ".join(command_path(args))
    items = iter(args)
    for arg in items:
        name, equals, value = arg.partition("=")
        new = renamed.get(name)
        if new is None:
            out.append(arg)
            continue
        warnings.append(f"{name} is now {new} in `edgepipe {path}`; {name} will stop working "
                        f"in the next release.")
        if name in COMMA_LISTS:
            value = value if equals else next(items, "")
            for item in (v.strip() for v in value.split(",")):
                if item:
                    out.extend([new, item])
        else:
            out.append(f"{new}={value}" if equals else new)
    return out, warnings
