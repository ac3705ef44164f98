"""The official conformance suite (jupyter_kernel_test) against the kernel under test.

Every attribute KernelTests knows is filled in as for a Python kernel. Completion samples use
builtins whose full match set is fixed (they run with no prior execution); the history
pattern matches exactly one of the code_execute_result samples.
"""

import unittest

import kernel_harness as H
import jupyter_kernel_test

# A 1x1 red PNG.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"


class SandcellKernelSpecTests(jupyter_kernel_test.KernelTests):
    kernel_name = H.KERNEL_NAME

    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('to stderr', file=sys.stderr)"

    completion_samples = [
        {"text": "zi", "matches": {"zip"}},
        {"text": "pri", "matches": {"print"}},
        {"text": "isinst", "matches": {"isinstance"}},
        {"text": "ZeroDiv", "matches": {"ZeroDivisionError"}},
        {"text": "NotImplemented", "matches": {"NotImplemented", "NotImplementedError"}},
        {"text": "StopI", "matches": {"StopIteration"}},
        {"text": "memoryvi", "matches": {"memoryview"}},
        {"text": "nonloc", "matches": {"nonlocal"}},
    ]

    complete_code_samples = [
        "1+1",
        "x = 1",
        "print('hello')",
        "import os",
        "for i in range(3): print(i)",
    ]
    incomplete_code_samples = [
        "def f():",
        "for i in range(3):",
        "x = (",
        "print('a'",
        "x = [1,\n 2,",
        '"""unterminated docstring',
    ]
    invalid_code_samples = [
        "a b c",
        "1 = 2",
        ")",
        "x = )",
    ]

    code_page_something = "print?"

    code_generate_error = "raise ValueError('boom')"

    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "'sand' + 'cell'", "result": "'sandcell'"},
        {"code": "[i * i for i in range(4)]", "result": "[0, 1, 4, 9]"},
        {"code": "None or {'a': 1}", "result": "{'a': 1}"},
        {"code": "from IPython.display import HTML; HTML('<b>x</b>')",
         "mime": "text/html", "result": "<b>x</b>"},
        {"code": "class Rich:\n    def _repr_html_(self):\n        return '<em>rich</em>'\nRich()",
         "mime": "text/html", "result": "<em>rich</em>"},
    ]

    code_display_data = [
        {"code": "from IPython.display import display, HTML; display(HTML('<b>html</b>'))",
         "mime": "text/html"},
        {"code": "from IPython.display import display, Markdown; display(Markdown('*md*'))",
         "mime": "text/markdown"},
        {"code": "import base64\nfrom IPython.display import display, Image\n"
                 "display(Image(data=base64.b64decode('%s')))" % PNG_B64,
         "mime": "image/png"},
        {"code": "from IPython.display import display, JSON; display(JSON({'a': [1, 2]}))",
         "mime": "application/json"},
        {"code": "from IPython.display import display; display('plain')",
         "mime": "text/plain"},
    ]

    # matches '6*7' (glob over the whole source) and no other sample
    code_history_pattern = "6?7"
    # ipykernel answers a 'range' request for the current session with session number 0
    # instead of the number its 'tail' reply gave, so in dev mode (and only there) 'range'
    # is not checked; sandcell must pass all three.
    supported_history_operations = (("tail", "search") if H.DEV_MODE
                                    else ("tail", "range", "search"))

    code_inspect_sample = "zip"

    code_clear_output = "from IPython.display import clear_output; print('x'); clear_output()"


if __name__ == "__main__":
    unittest.main(verbosity=2)
