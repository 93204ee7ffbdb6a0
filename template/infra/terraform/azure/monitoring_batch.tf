# Batch alerts: any failed execution of the scoring job.

locals {
  batch_job_id = local.serving_enabled ? azurerm_container_app_job.batch[0].id : ""

  serving_charts = local.serving_enabled ? [
    { title = "Batch executions", resource_id = local.batch_job_id, namespace = "microsoft.app/jobs", metric = "Executions", aggregation = 1 },
  ] : []
}

resource "azurerm_monitor_metric_alert" "batch_failed" {
  count = local.serving_enabled ? 1 : 0

  name                = "${local.name}-batch-failed"
  resource_group_name = azurerm_resource_group.main.name
  scopes              = [local.batch_job_id]
  description         = "A batch scoring execution failed: predictions for this run are missing."
  severity            = 1
  frequency           = "PT15M"
  window_size         = "PT1H"
  tags                = local.tags

  criteria {
    metric_namespace = "Microsoft.App/jobs"
    metric_name      = "Executions"
    aggregation      = "Total"
    operator         = "GreaterThan"
    threshold        = 0

    dimension {
      name     = "state"
      operator = "Include"
      values   = ["Failed"]
    }
  }

  action {
    action_group_id = azurerm_monitor_action_group.alerts.id
  }
}
