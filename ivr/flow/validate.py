"""Every check that makes a menu tree safe to run, done at load time.

A call must never discover a broken tree: an unknown node, a loop that spins
without the caller, a template with a typo, a missing recording or a USSD screen
that the network truncates. :func:`validate` reports them all as
:class:`~ivr.config.problems.Problem` values, sorted by file and position, and
never raises for anything found in the files.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from ivr.config.problems import Problem, did_you_mean
from ivr.config.templates import CONTEXT_NAMES
from ivr.flow.action_signature import ActionSignature, check_value, signature_of
from ivr.flow.parse import Draft, build_draft, expand_paths

SOUND_EXTENSIONS = ("wav", "gsm", "ulaw", "sln")

PathArg = str | Path | Iterable[str | Path]
KnownActions = Mapping[str, Collection[str] | ActionSignature]
"""Each action the host runs: a built-in's required arg names, or a declared action's signature."""


def validate(
    paths: PathArg,
    *,
    numbers: str | Path | None = None,
    sound_dirs: Sequence[str | Path] = (),
    extra_sound_dirs: Sequence[str | Path] = (),
    known_actions: KnownActions | None = None,
) -> list[Problem]:
    """All problems of the tree in ``paths`` (files, or directories of *.yaml), sorted.

    ``numbers`` is numbers.yaml (DNIS -> entry node); ``sound_dirs`` hold
    ``<lang>/NAME.{wav,gsm,ulaw,sln}``; ``extra_sound_dirs`` (e.g. Asterisk's core
    sounds) may also hold ``NAME.ext`` directly. ``known_actions`` maps each action
    name the host implements to its required arg names; None skips that check.
    """
    return analyse(
        paths,
        numbers=numbers,
        sound_dirs=sound_dirs,
        extra_sound_dirs=extra_sound_dirs,
        known_actions=known_actions,
    )[1]


def analyse(
    paths: PathArg,
    *,
    numbers: str | Path | None = None,
    sound_dirs: Sequence[str | Path] = (),
    extra_sound_dirs: Sequence[str | Path] = (),
    known_actions: KnownActions | None = None,
) -> tuple[Draft, list[Problem]]:
    """The parsed draft and its problems; :func:`ivr.flow.loader.load_tree` builds on this."""
    problems: list[Problem] = []
    files = expand_paths(paths, problems)
    if not files and not problems:
        problems.append(Problem("<no files>", 1, 1, "no menu files given"))
    draft = Draft()
    try:
        draft = build_draft(files, numbers)
        problems.extend(draft.problems)
        if files and not draft.incomplete:
            problems.extend(check_references(draft))
            problems.extend(check_entry_points(draft))
            problems.extend(check_reachable(draft))
            problems.extend(check_loops(draft))
            problems.extend(check_templates(draft))
            problems.extend(check_languages(draft))
            problems.extend(check_sounds(draft, sound_dirs, extra_sound_dirs))
            if known_actions is not None:
                problems.extend(check_actions(draft, known_actions))
    except Exception as exc:  # a validator bug must still not become a traceback for the user
        where = str(files[0]) if files else "<no files>"
        problems.append(Problem(where, 1, 1, f"internal validator error: {type(exc).__name__}: {exc}"))
    return draft, sorted(set(problems))


def check_references(draft: Draft) -> list[Problem]:
    out = []
    for ref in draft.refs:
        if ref.target not in draft.node_locs:
            hint = did_you_mean(ref.target, draft.node_locs)
            out.append(Problem.at(ref.loc, f"'{ref.field}' in {ref.what} refers to unknown node '{ref.target}'{hint}"))
    return out


def _roots(draft: Draft) -> list[str]:
    roots = [draft.entry, draft.fallback, *draft.numbers.values(), *draft.roots]
    return [r for r in roots if r and r in draft.node_locs]


def check_entry_points(draft: Draft) -> list[Problem]:
    if draft.entry is None and not draft.numbers:
        return [Problem.at(draft.first_loc, "the tree has no entry point; set 'entry' or map a number in numbers.yaml")]
    return []


def _adjacency(draft: Draft, *, free_only: bool) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {node: [] for node in draft.node_locs}
    for ref in draft.refs:
        if ref.source and ref.target in graph and (ref.free or not free_only):
            graph[ref.source].append(ref.target)
    return graph


def check_reachable(draft: Draft) -> list[Problem]:
    roots = _roots(draft)
    if not roots:
        return []
    graph = _adjacency(draft, free_only=False)
    seen = set(roots)
    stack = list(roots)
    while stack:
        for nxt in graph[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return [
        Problem.at(loc, f"node '{node}' is unreachable from every entry point")
        for node, loc in draft.node_locs.items()
        if node not in seen
    ]


def check_loops(draft: Draft) -> list[Problem]:
    """Cycles made only of edges taken without caller input (say, goto, action without confirm, else)."""
    graph = _adjacency(draft, free_only=True)
    out: list[Problem] = []
    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 on the DFS path, 2 finished
    for start in graph:
        if start in state:
            continue
        path: list[str] = [start]
        iters = [iter(graph[start])]
        state[start] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    shown = " -> ".join([*cycle, nxt])
                    out.append(Problem.at(draft.node_locs[nxt], f"loop without input: {shown}"))
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(graph[nxt]))
    return out


def check_templates(draft: Draft) -> list[Problem]:
    out = []
    known = ", ".join(sorted(CONTEXT_NAMES))
    for use in draft.templates:
        for name in sorted(use.info.names - CONTEXT_NAMES):
            hint = did_you_mean(name, CONTEXT_NAMES) or f"; known names are {known}"
            out.append(Problem.at(use.loc, f"template uses undefined name '{name}'{hint}"))
        if use.info.private_attributes:
            name = sorted(use.info.private_attributes)[0]
            out.append(
                Problem.at(
                    use.loc, f"template uses private attribute '{name}'; the sandbox refuses names starting with '_'"
                )
            )
        for var in sorted(use.info.var_refs):
            if var not in draft.stores:
                out.append(Problem.at(use.loc, f"template uses vars.{var} but no collect node stores '{var}'"))
            elif draft.stores[var] and not use.masked_ok:
                out.append(Problem.at(use.loc, f"masked variable '{var}' may only be used in action args"))
    return out


def check_languages(draft: Draft) -> list[Problem]:
    out = []
    for use in draft.texts:
        for lang in draft.languages:
            if lang not in use.languages:
                out.append(Problem.at(use.loc, f"{use.what} has no text for language '{lang}'"))
    return out


def find_sound(
    name: str, language: str, sound_dirs: Sequence[str | Path], extra_sound_dirs: Sequence[str | Path]
) -> Path | None:
    """The file a host would play for ``name`` in ``language``, or None."""
    candidates: list[Path] = [Path(d) / language for d in sound_dirs]
    for d in extra_sound_dirs:
        candidates += [Path(d) / language, Path(d)]
    for folder in candidates:
        for ext in SOUND_EXTENSIONS:
            path = folder / f"{name}.{ext}"
            if path.is_file():
                return path
    return None


def check_sounds(
    draft: Draft, sound_dirs: Sequence[str | Path], extra_sound_dirs: Sequence[str | Path]
) -> list[Problem]:
    out = []
    for use in draft.sounds:
        for lang in use.languages or draft.languages:
            if find_sound(use.name, lang, sound_dirs, extra_sound_dirs) is None:
                out.append(Problem.at(use.loc, f"sound '{use.name}' not found for language '{lang}'"))
    return out


def check_actions(draft: Draft, known_actions: KnownActions) -> list[Problem]:
    """Unknown actions, missing args and, for declared actions, unknown args and literals of the wrong type."""
    out = []
    for use in draft.actions:
        if use.name not in known_actions:
            out.append(Problem.at(use.name_loc, f"unknown action '{use.name}'{did_you_mean(use.name, known_actions)}"))
            continue
        signature = signature_of(known_actions[use.name])
        for arg in sorted(set(signature.required) - use.args):
            out.append(Problem.at(use.loc, f"action '{use.name}' needs arg '{arg}'"))
        if signature.strict:
            declared = [a.name for a in signature.args]
            for arg in sorted(use.args - set(declared)):
                out.append(Problem.at(use.loc, f"action '{use.name}' takes no arg '{arg}'"
                                               f"{did_you_mean(arg, declared)}"))
        for arg, value, loc in use.literals:
            spec = signature.spec(arg)
            problem = None if spec is None else check_value(spec, value)
            if problem is not None:
                out.append(Problem.at(loc, f"action '{use.name}': {problem}"))
    return out
