# Container Apps environment shared by the serving app or the batch job: runs in the `apps` subnet (so it reaches
# storage through the service endpoint), logs to Log Analytics, consumption billing (nothing is charged while no
# replica runs).

resource "azurerm_container_app_environment" "main" {
  count = local.serving_enabled ? 1 : 0

  name                           = local.short_name
  location                       = azurerm_resource_group.main.location
  resource_group_name            = azurerm_resource_group.main.name
  log_analytics_workspace_id     = azurerm_log_analytics_workspace.main.id
  infrastructure_subnet_id       = azurerm_subnet.apps.id
  internal_load_balancer_enabled = false
  zone_redundancy_enabled        = var.zone_redundant
  tags                           = local.tags

  workload_profile {
    name                  = "Consumption"
    workload_profile_type = "Consumption"
  }

  depends_on = [azurerm_subnet_network_security_group_association.apps]
}
