"""The CPU as read from /proc/cpuinfo: model name for reports, feature flags for ``precision: auto``."""

import platform

import pytest

from model.cpu import cpu_flags, cpu_name

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16
processor\t: 1
model name\t: AMD EPYC 9B14
"""
ARM = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd bf16 sve
CPU implementer\t: 0x41
"""


@pytest.mark.parametrize(
    "text, name, flags",
    [
        (X86, "AMD EPYC 9B14", {"fpu", "sse2", "avx2", "avx512f", "avx512_bf16"}),
        (ARM, platform.processor() or platform.machine(), {"fp", "asimd", "bf16", "sve"}),  # Arm names no model
    ],
)
def test_name_and_flags_come_from_cpuinfo(text, name, flags, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert cpu_name(cpuinfo) == name
    assert cpu_flags(cpuinfo) == flags


def test_an_unreadable_cpuinfo_gives_what_python_knows(tmp_path):
    assert cpu_name(tmp_path / "missing") == (platform.processor() or platform.machine())
    assert cpu_flags(tmp_path / "missing") == set()
