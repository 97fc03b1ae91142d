from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.rpc import error_details_pb2 as _error_details_pb2
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor
COMMON_ERRORS_FIELD_NUMBER: _ClassVar[int]
common_errors: _descriptor.FieldDescriptor
ERRORS_FIELD_NUMBER: _ClassVar[int]
errors: _descriptor.FieldDescriptor
