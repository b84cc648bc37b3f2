"""AWS Bedrock: ConverseStream (and Converse) with SigV4 or Bedrock API keys."""

from lluminary.providers.bedrock._converse import BedrockConverseDecoder
from lluminary.providers.bedrock._decode import BedrockDecoder
from lluminary.providers.bedrock._provider import Bedrock, model_path
from lluminary.providers.bedrock._request import encode_body
from lluminary.providers.bedrock._signing import AwsCredentials, ChainCredentials

__all__ = [
    "AwsCredentials",
    "Bedrock",
    "BedrockConverseDecoder",
    "BedrockDecoder",
    "ChainCredentials",
    "encode_body",
    "model_path",
]
