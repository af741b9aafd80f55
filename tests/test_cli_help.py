"Every option of every command states one true default in `--help` (or says it is required)."
import argparse, dataclasses, re, subprocess, sys
import pytest
from reid_nb import cli
from reid_nb.train import TrainConfig

PARSERS = dict(data=cli.data_parser, train=cli.train_parser, demo=cli.demo_parser, eval=cli.eval_parser,
               search=cli.search_parser)

def option_helps(p):
    "`{option: (action, its help text as --help prints it, on one line)}`."
    fmt = p._get_formatter()
    return {a.option_strings[0]: (a, ' '.join(fmt._expand_help(a).split()))
            for a in p._actions if a.option_strings and not isinstance(a, argparse._HelpAction)}

@pytest.mark.parametrize('name', PARSERS)
def test_each_option_states_one_default(name):
    for opt, (a, h) in option_helps(PARSERS[name]()).items():
        n = h.count('(default:') + h.count('(required)')
        assert n == 1, f"reid_nb_{name} {opt}: {n} defaults in {h!r}"
        assert not re.search(r'\(default: ?(None)?\)', h), f"reid_nb_{name} {opt}: empty default in {h!r}"
        assert a.required == ('(required)' in h), (opt, h)
        said = re.search(r'\(default: (.*)\)$', h)
        if said and a.default is not None:           # a real value: shown as the user would type it
            assert said.group(1).startswith(cli.show_default(a.default)), (opt, h)

def test_train_help_matches_the_dataclass():
    helps = {opt[2:]: h for opt, (a, h) in option_helps(cli.train_parser()).items()}
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert set(fields) <= set(helps)
    for name, d in fields.items():
        shown = re.search(r'\(default: (.*)\)$', helps[name]).group(1)
        if name == 'eval_data': assert d == '' and 'the first' in shown; continue
        assert shown == cli.show_default(d), (name, shown, d)
    assert re.search(r'\(default: 256 128\)$', helps['size']) and helps['amp'].endswith('(default: on)')
    assert helps['data'].endswith('(default: Market-1501-v15.09.15)') and helps['data'].count('default') == 1

def test_installed_help_text():
    "The printed --help of each command, as a user sees it: no 'None', no duplicate, no empty default."
    for name in PARSERS:
        r = subprocess.run([sys.executable, '-m', 'reid_nb.cli', name, '--help'], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        text = ' '.join(r.stdout.split())
        assert '(default: None)' not in text and '(default: )' not in text, name
        assert not re.search(r'\(default: [^)]*\) \(default:', text), name
