# Alarms and dashboard of the SageMaker endpoint.

locals {
  endpoint_dimensions = { EndpointName = local.endpoint_name, VariantName = local.variant_name }
}

resource "aws_cloudwatch_metric_alarm" "endpoint_5xx_rate" {
  count = local.serving_enabled ? 1 : 0

  alarm_name          = "${local.name}-endpoint-5xx-rate"
  alarm_description   = "More than ${var.error_rate_percent}% of invocations failed with 5xx for 10 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.error_rate_percent
  evaluation_periods  = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]

  metric_query {
    id = "rate"
    # Below 20 invocations per 5 minutes one failed request is no trend: the share counts as 0.
    expression  = "IF(FILL(invocations, 0) >= 20, 100 * FILL(errors, 0) / invocations, 0)"
    label       = "5xx share of invocations (%)"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/SageMaker"
      metric_name = "Invocation5XXErrors"
      dimensions  = local.endpoint_dimensions
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "invocations"
    metric {
      namespace   = "AWS/SageMaker"
      metric_name = "Invocations"
      dimensions  = local.endpoint_dimensions
      period      = 300
      stat        = "Sum"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "endpoint_latency_p99" {
  count = local.serving_enabled ? 1 : 0

  alarm_name          = "${local.name}-endpoint-latency-p99"
  alarm_description   = "p99 model latency above ${var.latency_p99_seconds}s for 15 minutes."
  namespace           = "AWS/SageMaker"
  metric_name         = "ModelLatency"
  dimensions          = local.endpoint_dimensions
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.latency_p99_seconds * 1000000 # ModelLatency is in microseconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_dashboard" "endpoint" {
  count = local.serving_enabled ? 1 : 0

  dashboard_name = local.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Invocations and errors"
          region = var.region
          stat   = "Sum"
          period = 60
          metrics = [
            ["AWS/SageMaker", "Invocations", "EndpointName", local.endpoint_name, "VariantName", local.variant_name],
            ["AWS/SageMaker", "Invocation5XXErrors", "EndpointName", local.endpoint_name, "VariantName", local.variant_name],
            ["AWS/SageMaker", "Invocation4XXErrors", "EndpointName", local.endpoint_name, "VariantName", local.variant_name],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Model latency (microseconds)"
          region = var.region
          period = 60
          metrics = [
            ["AWS/SageMaker", "ModelLatency", "EndpointName", local.endpoint_name, "VariantName", local.variant_name, { stat = "p50" }],
            ["AWS/SageMaker", "ModelLatency", "EndpointName", local.endpoint_name, "VariantName", local.variant_name, { stat = "p99" }],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 6, width = 24, height = 6
        properties = {
          title  = "Instance CPU and memory (%)"
          region = var.region
          stat   = "Average"
          period = 60
          metrics = [
            ["/aws/sagemaker/Endpoints", "CPUUtilization", "EndpointName", local.endpoint_name, "VariantName", local.variant_name],
            ["/aws/sagemaker/Endpoints", "MemoryUtilization", "EndpointName", local.endpoint_name, "VariantName", local.variant_name],
          ]
        }
      },
    ]
  })
}
