"""Scale-out (docs/design/scale-out.md): controllers dispatch runs through NATS JetStream to invokers.

``DispatchRunner`` is the controller's ``ActionRunner``; ``InvokerWorker`` is the invoker process's
loop around the local ``Invoker``. The composition roots are ``stockade.roles``.
"""

from stockade.cluster.dispatch import DispatchRunner, Heartbeat
from stockade.cluster.ring import HashRing
from stockade.cluster.worker import InvokerWorker

__all__ = ["DispatchRunner", "HashRing", "Heartbeat", "InvokerWorker"]
