# Alerts of the scheduled batch job: the schedule could not start the task, or the task ended with an error.

resource "aws_cloudwatch_metric_alarm" "batch_invocation_failures" {
  count = local.serving_enabled ? 1 : 0

  alarm_name          = "${local.name}-batch-invocation-failures"
  alarm_description   = "EventBridge Scheduler could not start the batch task (target errors after retries, or dropped invocations)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]

  metric_query {
    id          = "failures"
    expression  = "FILL(target_errors, 0) + FILL(dropped, 0)"
    label       = "Failed batch invocations"
    return_data = true
  }

  metric_query {
    id = "target_errors"
    metric {
      namespace   = "AWS/Scheduler"
      metric_name = "TargetErrorCount"
      dimensions  = { ScheduleGroup = "default" }
      period      = 300
      stat        = "Sum"
    }
  }

  metric_query {
    id = "dropped"
    metric {
      namespace   = "AWS/Scheduler"
      metric_name = "InvocationDroppedCount"
      dimensions  = { ScheduleGroup = "default" }
      period      = 300
      stat        = "Sum"
    }
  }
}

# A started task that exits non-zero (rejected input: 1, missing model or bad usage: 2) or never starts.
resource "aws_cloudwatch_event_rule" "batch_failed" {
  count = local.serving_enabled ? 1 : 0

  name        = "${local.batch_family}-failed"
  description = "The batch task stopped with a non-zero exit code or failed to start"
  event_pattern = jsonencode({
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = {
      clusterArn = [aws_ecs_cluster.main.arn]
      group      = ["family:${local.batch_family}"]
      lastStatus = ["STOPPED"]
      "$or" = [
        { containers = { exitCode = [{ "anything-but" = 0 }] } },
        { stopCode = ["TaskFailedToStart"] },
      ]
    }
  })
}

resource "aws_cloudwatch_event_target" "batch_failed_to_alerts" {
  count = local.serving_enabled ? 1 : 0

  rule = aws_cloudwatch_event_rule.batch_failed[0].name
  arn  = aws_sns_topic.alerts.arn

  input_transformer {
    input_paths = {
      task   = "$.detail.taskArn"
      reason = "$.detail.stoppedReason"
    }
    input_template = "\"Batch job ${local.batch_family} failed: <reason> (task <task>). Logs: CloudWatch group ${aws_cloudwatch_log_group.app.name}, stream prefix batch/.\""
  }
}

resource "aws_cloudwatch_dashboard" "batch" {
  count = local.serving_enabled ? 1 : 0

  dashboard_name = local.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type = "metric", x = 0, y = 0, width = 12, height = 6
        properties = {
          title  = "Schedule invocations"
          region = var.region
          stat   = "Sum"
          period = 3600
          metrics = [
            ["AWS/Scheduler", "InvocationAttemptCount", "ScheduleGroup", "default"],
            ["AWS/Scheduler", "TargetErrorCount", "ScheduleGroup", "default"],
            ["AWS/Scheduler", "InvocationDroppedCount", "ScheduleGroup", "default"],
          ]
        }
      },
      {
        type = "log", x = 12, y = 0, width = 12, height = 6
        properties = {
          title  = "Batch job output"
          region = var.region
          query  = "SOURCE '${aws_cloudwatch_log_group.app.name}' | fields @timestamp, @message | filter @logStream like /^batch/ | sort @timestamp desc | limit 50"
        }
      },
    ]
  })
}
