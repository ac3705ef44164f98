"""sandcell: what code running in a sandcell kernel may use of the kernel itself.

Importable under every security profile (the kernel's own helper modules are not):

    from sandcell import Comm, register_comm_target

    c = Comm(target_name="my-widget", data={"value": 1})
    c.send({"value": 2}, buffers=[b"raw bytes"])
"""

from sandcell_kernel import Comm, register_comm_target

__all__ = ["Comm", "register_comm_target"]
