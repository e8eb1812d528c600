"""Host side of running actions: warm pool, code materialisation, runtime protocol, logs."""

from stockade.invoker.code import CodeError, CodeStore, MaterializedCode, extract_zip, tree_digest
from stockade.invoker.egress_policy import EgressPolicy, EgressPolicyError, load_egress_data, parse_egress
from stockade.invoker.egress_proxy import EgressLease, EgressLimits, EgressProxy, EgressStatistics
from stockade.invoker.invoker import Invoker
from stockade.invoker.logs import (
    LOG_COLLECTION_FAILED,
    LOG_DEVELOPER_ERROR,
    ActivationLogs,
    LogCollector,
    format_log_line,
    format_timestamp,
    truncation_message,
)
from stockade.invoker.outcomes import (
    CHECK_FAILED,
    CODE_MODIFIED,
    ENTRY_REPLACED,
    STRAY_PROCESSES,
    InvokerStatistics,
    RunOutcome,
    RunRequest,
    classify_result,
)
from stockade.invoker.pool import PoolKey, PoolStatistics, WarmPool
from stockade.invoker.protocol import (
    MAX_FRAME_BYTES,
    SENTINEL,
    ChannelClosedError,
    FrameChannel,
    FrameTooLargeError,
    MalformedFrameError,
    ProtocolError,
)
from stockade.invoker.session import SandboxSession

__all__ = [
    "CHECK_FAILED",
    "CODE_MODIFIED",
    "ENTRY_REPLACED",
    "LOG_COLLECTION_FAILED",
    "LOG_DEVELOPER_ERROR",
    "MAX_FRAME_BYTES",
    "SENTINEL",
    "STRAY_PROCESSES",
    "ActivationLogs",
    "ChannelClosedError",
    "CodeError",
    "CodeStore",
    "EgressLease",
    "EgressLimits",
    "EgressPolicy",
    "EgressPolicyError",
    "EgressProxy",
    "EgressStatistics",
    "FrameChannel",
    "FrameTooLargeError",
    "Invoker",
    "InvokerStatistics",
    "LogCollector",
    "MalformedFrameError",
    "MaterializedCode",
    "PoolKey",
    "PoolStatistics",
    "ProtocolError",
    "RunOutcome",
    "RunRequest",
    "SandboxSession",
    "WarmPool",
    "classify_result",
    "extract_zip",
    "format_log_line",
    "format_timestamp",
    "load_egress_data",
    "parse_egress",
    "tree_digest",
    "truncation_message",
]
