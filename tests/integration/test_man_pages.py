#!/usr/bin/env python3
"""The man pages (docs/man/*.scd, rendered by scdoc into build/man/):
each renders with man -l without a warning; shim.yaml(5) names every key
the configuration parser accepts (common/config.c); shimd(8) names every
option of shimd --help."""
import glob
import os
import re
import subprocess

import shimtest as st

MAN_ENV = dict(os.environ, MANWIDTH="80", MANPAGER="cat", LC_ALL="C.UTF-8")


def render(page):
    r = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                       env=MAN_ENV, timeout=60)
    assert r.returncode == 0, (page, r.stderr)
    assert not r.stderr.strip(), (page, r.stderr)
    # man -l output with hyphenation joined again
    return re.sub(r"‐\n\s*", "", r.stdout)


def test_every_page_renders():
    srcs = glob.glob(os.path.join(st.SRC, "docs", "man", "*.scd"))
    assert len(srcs) >= 2, srcs
    for src in srcs:
        page = os.path.join(st.BUILD, "man", os.path.basename(src)[:-4])
        assert os.path.isfile(page), "not rendered: %s (make man)" % page
        text = render(page)
        for section in ("NAME", "DESCRIPTION", "SEE ALSO"):
            assert "\n%s\n" % section in text, (page, section)


def config_keys():
    """Every key of the parser's keydef tables."""
    src = open(os.path.join(st.SRC, "common", "config.c")).read()
    keys = set(re.findall(r'\{ "([a-z_0-9]+)", k[a-z_]*\w* \}', src))
    assert len(keys) > 60, keys
    return keys


def defined_terms(scd):
    """Keys the page defines: the bold terms that open a line ("*host*,
    *port* (6514)", "*type*: ...") and the section headings."""
    terms = set()
    for line in scd.splitlines():
        if line.startswith("# "):
            terms.update(re.findall(r"[a-z_0-9]+", line[2:]))
        elif line.startswith("*"):
            head = re.match(r"((?:\*[a-z_0-9]+\*(?:, )?)+)", line)
            if head:
                terms.update(re.findall(r"\*([a-z_0-9]+)\*", head.group(1)))
    return terms


def test_shim_yaml_5_names_every_key():
    render(os.path.join(st.BUILD, "man", "shim.yaml.5"))
    scd = open(os.path.join(st.SRC, "docs", "man", "shim.yaml.5.scd")).read()
    terms = defined_terms(scd)
    missing = sorted(k for k in config_keys() if k not in terms)
    assert not missing, "shim.yaml(5) does not describe: %s" % ", ".join(missing)


def test_shimd_8_names_every_option():
    r = subprocess.run([st.SHIMD, "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0
    opts = set(re.findall(r"--[a-z][a-z-]+", r.stdout))
    assert "--config" in opts and "--check-config" in opts, opts
    text = render(os.path.join(st.BUILD, "man", "shimd.8"))
    missing = sorted(o for o in opts if o not in text)
    assert not missing, "shimd(8) lacks: %s" % ", ".join(missing)
    for word in ("Landlock", "seccomp", "WATCHDOG=1", "shim.user"):
        assert word in text, word


if __name__ == "__main__":
    st.run(st.tests_of(globals()))
