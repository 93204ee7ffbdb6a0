# serving = managed: the same image as a SageMaker real-time endpoint. SageMaker starts the container with the
# argument `serve` and sends traffic to port 8080 (GET /ping, POST /invocations), which the service accepts.
# The model is baked into the image, so the container runs with network isolation (no network access at all).
# Created once var.image_tag is set.

variable "endpoint_instance_type" {
  description = "SageMaker instance type of the endpoint."
  type        = string
  default     = "ml.t2.medium"
}

variable "data_capture_percentage" {
  description = "Share of the endpoint's calls (percent) its data capture writes to the data bucket for the drift check; the service's INFERENCE_LOG_SAMPLE_RATE elsewhere."
  type        = number
  default     = 10

  validation {
    condition     = var.data_capture_percentage >= 0 && var.data_capture_percentage <= 100
    error_message = "data_capture_percentage must be between 0 and 100."
  }
}

variable "endpoint_min_instances" {
  description = "Minimum (and initial) number of endpoint instances."
  type        = number
  default     = 1
}

variable "endpoint_max_instances" {
  description = "Maximum number of endpoint instances under load."
  type        = number
  default     = 2
}

variable "invocations_per_instance_target" {
  description = "Invocations per minute per instance the endpoint scales to."
  type        = number
  default     = 600
}

locals {
  sagemaker_port = 8080
  variant_name   = "primary"
  endpoint_name  = local.name
  # SageMaker names are immutable and at most 63 characters: a new image tag means a new model and configuration.
  model_revision_name = substr("${local.name}-${var.image_tag}", 0, 63)
  service_url         = local.serving_enabled ? aws_sagemaker_endpoint.api[0].name : ""
}

resource "aws_iam_role" "sagemaker" {
  name                 = "${local.name}-sagemaker"
  assume_role_policy   = data.aws_iam_policy_document.sagemaker_trust.json
  permissions_boundary = aws_iam_policy.boundary.arn
}

data "aws_iam_policy_document" "sagemaker_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "sagemaker" {
  name   = "pull-image-write-logs-metrics-capture"
  role   = aws_iam_role.sagemaker.id
  policy = data.aws_iam_policy_document.sagemaker.json
}

data "aws_iam_policy_document" "sagemaker" {
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullProjectImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [local.image_repository_arn]
  }

  # Data capture writes with the execution role: new objects under the capture prefix only.
  statement {
    sid       = "WriteDataCaptureOnly"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.project["data"].arn}/${local.data_capture_prefix}*"]
  }

  statement {
    sid       = "EncryptDataCapture"
    actions   = ["kms:GenerateDataKey", "kms:Encrypt"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "WriteEndpointLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.endpoint.arn}:*"]
  }

  statement {
    sid       = "PublishEndpointMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*"]
    }
  }
}

# SageMaker writes to this group by name; creating it first gives it KMS encryption and a retention.
resource "aws_cloudwatch_log_group" "endpoint" {
  name              = "/aws/sagemaker/Endpoints/${local.endpoint_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_sagemaker_model" "api" {
  count = local.serving_enabled ? 1 : 0

  name                     = local.model_revision_name
  execution_role_arn       = aws_iam_role.sagemaker.arn
  enable_network_isolation = true

  primary_container {
    image = local.image_uri
    mode  = "SingleModel"
    environment = {
      APP_ENV         = var.environment
      PORT            = tostring(local.sagemaker_port)
      WEB_CONCURRENCY = "1"
      LOG_LEVEL       = "info"
      # SageMaker authenticates every InvokeEndpoint call (SigV4, IAM) before it reaches the container.
      AUTH_MODE = "gateway" # SageMaker authenticates every call (SigV4, sagemaker:InvokeEndpoint)
    }
  }

  depends_on = [aws_iam_role_policy.sagemaker]
}

resource "aws_sagemaker_endpoint_configuration" "api" {
  count = local.serving_enabled ? 1 : 0

  name        = local.model_revision_name
  kms_key_arn = aws_kms_key.main.arn

  production_variants {
    variant_name           = local.variant_name
    model_name             = aws_sagemaker_model.api[0].name
    instance_type          = var.endpoint_instance_type
    initial_instance_count = var.endpoint_min_instances
  }

  # The container runs without network access (enable_network_isolation), so it cannot ship its own inference log:
  # SageMaker captures a sample of the calls into the data bucket instead, and the drift check's pull converts them to
  # the inference log's records. Files appear within minutes of the calls.
  data_capture_config {
    enable_capture              = var.data_capture_percentage > 0
    initial_sampling_percentage = var.data_capture_percentage
    destination_s3_uri          = local.data_capture_uri
    kms_key_id                  = aws_kms_key.main.arn

    capture_options {
      capture_mode = "Input"
    }

    capture_options {
      capture_mode = "Output"
    }

    capture_content_type_header {
      json_content_types = ["application/json"]
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_sagemaker_endpoint" "api" {
  count = local.serving_enabled ? 1 : 0

  name                 = local.endpoint_name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.api[0].name

  # A failed update leaves the previous configuration serving (SageMaker rolls back on its own); with this, a
  # blue/green update also rolls back when the endpoint's error alarm fires during the bake time.
  deployment_config {
    blue_green_update_policy {
      termination_wait_in_seconds = 120

      traffic_routing_configuration {
        type                     = "ALL_AT_ONCE"
        wait_interval_in_seconds = 60
      }
    }

    auto_rollback_configuration {
      alarms {
        alarm_name = aws_cloudwatch_metric_alarm.endpoint_deployment_guard[0].alarm_name
      }
    }
  }
}

# Rolls a blue/green update back when the new fleet answers with server errors during the bake time. It notifies no
# one: the alarms that page live in monitoring_managed.tf.
resource "aws_cloudwatch_metric_alarm" "endpoint_deployment_guard" {
  count = local.serving_enabled ? 1 : 0

  alarm_name          = "${local.name}-endpoint-deployment-guard"
  alarm_description   = "Server errors of the endpoint during a deployment: SageMaker rolls the update back."
  namespace           = "AWS/SageMaker"
  metric_name         = "Invocation5XXErrors"
  dimensions          = { EndpointName = local.endpoint_name, VariantName = local.variant_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
}

resource "aws_appautoscaling_target" "endpoint" {
  count = local.serving_enabled ? 1 : 0

  service_namespace  = "sagemaker"
  resource_id        = "endpoint/${aws_sagemaker_endpoint.api[0].name}/variant/${local.variant_name}"
  scalable_dimension = "sagemaker:variant:DesiredInstanceCount"
  min_capacity       = var.endpoint_min_instances
  max_capacity       = var.endpoint_max_instances
}

resource "aws_appautoscaling_policy" "endpoint_invocations" {
  count = local.serving_enabled ? 1 : 0

  name               = "${local.name}-invocations"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.endpoint[0].service_namespace
  resource_id        = aws_appautoscaling_target.endpoint[0].resource_id
  scalable_dimension = aws_appautoscaling_target.endpoint[0].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.invocations_per_instance_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "SageMakerVariantInvocationsPerInstance"
    }
  }
}
